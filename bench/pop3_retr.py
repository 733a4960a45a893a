"""Time a full POP3 download (log in, LIST, RETR of every message one after another), first and again warm.

    .venv/bin/python bench/pop3_retr.py --seed 2000          # once: bench@bench.test gets 2,000 messages of ~20 KB
    .venv/bin/python bench/pop3_retr.py --host 127.0.0.1 --port 1110

Seeding goes through `actions.deliver` (what SMTP calls) with the database in DATABASE_URL. The client is a
lean socket reader (no per-line parsing) so that the figures measure the server, not the client.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

USER = "bench@bench.test"
PASSWORD = "bench password"


def seed(count: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
    import django

    django.setup()
    from mailboxes import actions
    from mailboxes.models import Account, Domain

    if not Domain.objects.filter(name="bench.test").exists():
        actions.create_domain("bench.test")
    if not Account.objects.filter(address=USER).exists():
        actions.create_account(USER, PASSWORD)
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut.\r\n"
    for number in range(count):
        raw = b"From: a@remote.test\r\nTo: %s\r\nSubject: bench %d\r\n\r\n" % (USER.encode(), number) + line * 205
        actions.deliver(raw, "a@remote.test", [USER])
    print(f"seeded {count} messages of about {len(raw)} bytes into {USER}")


class Client:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.buffer = bytearray()
        self.line()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        if not line.startswith(b"+OK"):
            raise RuntimeError(line.decode(errors="replace"))
        return line

    def multiline(self) -> bytes:
        start = 0
        while (end := self.buffer.find(b"\r\n.\r\n", start)) < 0:
            start = max(0, len(self.buffer) - 4)
            self._fill()
        data = bytes(self.buffer[: end + 2])
        del self.buffer[: end + 5]
        return data

    def command(self, text: str) -> bytes:
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()


def run(host: str, port: int, user: str, password: str) -> None:
    """The session twice: the first signs in with the server's caches cold (Mailsite's first sign-in of a
    password costs Argon2, later ones are answered from its cache for a minute), the second warm."""
    for session in ("first", "again"):
        print(f"{session}: ", end="")
        _session(host, port, user, password)


def _session(host: str, port: int, user: str, password: str) -> None:
    started = time.perf_counter()
    client = Client(host, port)
    client.command(f"USER {user}")
    client.command(f"PASS {password}")
    logged_in = time.perf_counter()
    client.command("LIST")
    sizes = [int(line.split()[1]) for line in client.multiline().splitlines()]
    total = 0
    for number in range(1, len(sizes) + 1):
        client.command(f"RETR {number}")
        total += len(client.multiline())
    done = time.perf_counter()
    client.command("QUIT")
    elapsed = done - logged_in
    rate = len(sizes) / elapsed
    print(
        f"login {logged_in - started:.3f} s; LIST + {len(sizes)} RETR: {elapsed:.3f} s, {rate:.0f} messages/s, "
        f"{total / elapsed / 1e6:.1f} MB/s; in all {done - started:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1110)
    parser.add_argument("--user", default=USER)
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--seed", type=int, metavar="N", help="deliver N messages to the bench account and exit")
    args = parser.parse_args()
    if args.seed:
        seed(args.seed)
    else:
        run(args.host, args.port, args.user, args.password)


if __name__ == "__main__":
    main()
