"""IMAP benchmark: FETCH and SEARCH over a 10,000-message folder, a QRESYNC resync and a TEXT search of a
100,000-message folder, and memory of 1,000 IDLE sessions.

    .venv/bin/python bench/imap_fetch.py --host 127.0.0.1 --port 1143 --user bench@example.test \
        --password secret [--messages 10000] [--big 100000] [--idle 1000] [--pid <imapd pid>]

The folder "bench" is filled by APPEND (LITERAL+, pipelined) until it holds --messages messages; the folder
"bench-big" by COPY of "bench" until it holds --big messages (0 skips those figures). TEXT search reads the
trigram index once the indexing task has reached the folder (about a minute under Celery beat; `manage.py
indextext` does it at once): before, it scans. Each timing is the wall time from sending the command to reading
its tagged reply, whole reply consumed; the warm figure is the median of five runs after one warm-up. The
resync figure: another session changes the flags of 100 messages of "bench-big", then SELECT bench-big (QRESYNC
(uidvalidity modseq)) is timed (five rounds, median).
"connect + LOGIN" is the median of 20 sign-ins one after another (socket opened to LOGIN's OK); "SELECT" the warm
median of SELECT bench, "STATUS" that of STATUS bench (MESSAGES UNSEEN) with the folder selected. --idle sessions
then log in, select the folder and enter IDLE, 50 connections at a time, each batch signing in one session after
another; the bench prints the time that took, then appends one message from another session and prints when each
IDLE session saw its EXISTS (p50 and p99 after the APPEND was sent), and expunges it again. With --pid, the peak
resident memory of that imapd process during the HEADER.FIELDS fetch is read from /proc (the peak is reset first
through clear_refs, which needs the same user or root), and the resident memory before and after the IDLE
sessions log in, and once they all saw the new message.

To compare with Dovecot, run one as a user-level instance on unprivileged ports (its own base_dir, state_dir
and log_path under a scratch directory, `ssl = no`, `disable_plaintext_auth = no`, a passwd-file passdb with
the bench user, `mail_location = maildir:...`, `mail_max_userip_connections` above --idle) and point --port
at it; both servers then get the same commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import time
from pathlib import Path

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.counter = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> Client:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        client = cls(reader, writer)
        await reader.readline()
        return client

    async def command(self, text: bytes) -> tuple[bytes, int]:
        """Send one command; return its tagged reply line and the bytes of all replies."""
        self.counter += 1
        tag = b"b%d" % self.counter
        self.writer.write(tag + b" " + text + b"\r\n")
        return await self.until(tag)

    async def until(self, tag: bytes) -> tuple[bytes, int]:
        total = 0
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            total += len(line)
            literal = _LITERAL.search(line)
            if literal:
                total += len(await self.reader.readexactly(int(literal[1])))
                continue
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                return line, total


def sample(number: int) -> bytes:
    return (
        f"From: Sender {number % 97} <sender{number % 97}@example.org>\r\n"
        f"To: Bench <bench@example.test>, other{number % 13}@example.net\r\n"
        f"Subject: Benchmark message {number} about topic {number % 31}\r\n"
        f"Date: Mon, 01 Jan 2024 10:{number % 60:02d}:00 +0000\r\n"
        f"Message-ID: <bench.{number}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + f"Body of message {number}.\r\n" * 20
    ).encode()


async def fill(client: Client, wanted: int) -> None:
    with contextlib.suppress(RuntimeError):  # NO: it exists already
        await client.command(b"CREATE bench")
    have = 0
    client.writer.write(b"s STATUS bench (MESSAGES)\r\n")
    while True:
        reply = await client.reader.readline()
        if reply.startswith(b"* STATUS"):
            have = int(re.search(rb"MESSAGES (\d+)", reply)[1])
        if reply.startswith(b"s "):
            break
    started = time.perf_counter()
    for start in range(have, wanted, 500):
        batch = range(start, min(start + 500, wanted))
        for number in batch:
            raw = sample(number)
            client.writer.write(b"a%d APPEND bench (\\Seen) {%d+}\r\n%s\r\n" % (number, len(raw), raw))
        await client.until(b"a%d" % batch[-1])
    if wanted > have:
        print(f"filled: {wanted - have} APPENDs in {time.perf_counter() - started:.1f} s")


async def timed(client: Client, command: bytes, runs: int = 5) -> tuple[float, float, int]:
    started = time.perf_counter()
    _, size = await client.command(command)
    cold = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await client.command(command)
        times.append(time.perf_counter() - started)
    return cold, statistics.median(times), size


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def sign_in(args: argparse.Namespace) -> Client:
    client = await Client.connect(args.host, args.port)
    await client.command(b'LOGIN %s "%s"' % (args.user.encode(), args.password.encode()))
    return client


async def sign_ins(args: argparse.Namespace, runs: int = 20) -> None:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        client = await sign_in(args)
        times.append(time.perf_counter() - started)
        await client.command(b"LOGOUT")
        client.writer.close()
    print(f"connect + LOGIN: median {statistics.median(times) * 1000:.1f} ms over {runs} sign-ins")


async def _exists_seen(client: Client) -> float:
    while True:
        line = await client.reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line.endswith(b" EXISTS\r\n"):
            return time.perf_counter()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def idle_sessions(args: argparse.Namespace) -> None:
    before = rss_mb(args.pid) if args.pid else 0.0
    clients: list[Client] = []
    started = time.perf_counter()
    for _ in range(0, args.idle, 50):
        connected = await asyncio.gather(*(Client.connect(args.host, args.port) for _ in range(50)))
        login = b'LOGIN %s "%s"' % (args.user.encode(), args.password.encode())
        for client in connected:
            await client.command(login)
            await client.command(b"SELECT bench")
            client.writer.write(b"i IDLE\r\n")
            while not (await client.reader.readline()).startswith(b"+"):
                pass
        clients.extend(connected)
    signed_in = time.perf_counter() - started
    await asyncio.sleep(1)
    memory = ""
    if args.pid:
        after = rss_mb(args.pid)
        memory = (
            f"; imapd RSS {before:.1f} MB before, {after:.1f} MB with them "
            f"({(after - before) * 1024 / len(clients):.1f} KB per session)"
        )
    print(f"IDLE: {len(clients)} sessions signed in, selected and idling in {signed_in:.1f} s{memory}")
    writer = await sign_in(args)
    waits = [asyncio.ensure_future(_exists_seen(client)) for client in clients]
    raw = sample(10**7)
    sent = time.perf_counter()
    line, _ = await writer.command(b"APPEND bench {%d+}\r\n" % len(raw) + raw)
    seen = await asyncio.wait_for(asyncio.gather(*waits), 60)
    delays = [when - sent for when in seen]
    memory = f"; imapd RSS then {rss_mb(args.pid):.1f} MB" if args.pid else ""
    print(
        f"IDLE: a new message seen by all {len(clients)} sessions, p50 {_percentile(delays, 0.5) * 1000:.0f} ms, "
        f"p99 {_percentile(delays, 0.99) * 1000:.0f} ms, last {max(delays) * 1000:.0f} ms{memory}"
    )
    uid = re.search(rb"\[APPENDUID \d+ (\d+)\]", line)
    if uid:
        await writer.command(b"SELECT bench")
        await writer.command(b"UID STORE %s +FLAGS.SILENT (\\Deleted)" % uid[1])
        await writer.command(b"UID EXPUNGE %s" % uid[1])
    await writer.command(b"LOGOUT")
    for client in clients:
        client.writer.close()


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def header_fields(client: Client, pid: int | None) -> None:
    command = b"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From Subject Date)])"
    before = rss_mb(pid) if pid else 0.0
    peak_known = bool(pid) and reset_peak(pid)
    cold, warm, size = await timed(client, command)
    memory = ""
    if peak_known and pid:
        memory = f"; imapd RSS {before:.1f} MB before, peak {peak_mb(pid):.1f} MB"
    print(
        f"{command[4:].decode()}: first {cold * 1000:.1f} ms, warm median {warm * 1000:.1f} ms ({size} bytes){memory}"
    )


async def big_folder(args: argparse.Namespace, client: Client) -> None:
    with contextlib.suppress(RuntimeError):
        await client.command(b"CREATE bench-big")
    while True:
        _, have = await status_messages(client, b"bench-big")
        if have >= args.big:
            break
        started = time.perf_counter()
        await client.command(b"SELECT bench")
        await client.command(b"UID COPY 1:%d bench-big" % min(args.messages, args.big - have))
        print(f"filled: bench-big holds {have} messages, copied more in {time.perf_counter() - started:.1f} s")
    other = await Client.connect(args.host, args.port)
    await other.command(b'LOGIN %s "%s"' % (args.user.encode(), args.password.encode()))
    await other.command(b"SELECT bench-big")
    await client.command(b"ENABLE QRESYNC")
    times = []
    for round_ in range(6):
        uidvalidity, modseq = await folder_state(client)
        flag = b"+FLAGS" if round_ % 2 == 0 else b"-FLAGS"
        await other.command(b"STORE 1:100 %s.SILENT (\\Flagged)" % flag)
        started = time.perf_counter()
        _, size = await client.command(b"SELECT bench-big (QRESYNC (%d %d))" % (uidvalidity, modseq))
        times.append(time.perf_counter() - started)
        await client.command(b"UNSELECT")
    print(
        f"QRESYNC resync of {args.big} messages after 100 flag changes: first {times[0] * 1000:.1f} ms, "
        f"warm median {statistics.median(times[1:]) * 1000:.1f} ms ({size} bytes)"
    )
    await other.command(b"LOGOUT")
    await client.command(b"SELECT bench-big")
    for text in (b"message 4242 about", b"topic 7"):  # in 10 of each 100,000 messages; in 3,230
        cold, warm, size = await timed(client, b'UID SEARCH TEXT "%s"' % text)
        print(
            f"UID SEARCH TEXT {text.decode()!r} over {args.big} messages: first {cold * 1000:.1f} ms, "
            f"warm median {warm * 1000:.1f} ms ({size} bytes)"
        )


async def status_messages(client: Client, folder: bytes) -> tuple[bytes, int]:
    client.counter += 1
    tag = b"b%d" % client.counter
    client.writer.write(tag + b" STATUS " + folder + b" (MESSAGES)\r\n")
    have = 0
    while True:
        line = await client.reader.readline()
        if line.startswith(b"* STATUS"):
            have = int(re.search(rb"MESSAGES (\d+)", line)[1])
        if line.startswith(tag + b" "):
            return line, have


async def folder_state(client: Client) -> tuple[int, int]:
    """UIDVALIDITY and HIGHESTMODSEQ from a STATUS of the selected folder's name."""
    client.counter += 1
    tag = b"b%d" % client.counter
    client.writer.write(tag + b" STATUS bench-big (UIDVALIDITY HIGHESTMODSEQ)\r\n")
    while True:
        line = await client.reader.readline()
        if line.startswith(b"* STATUS"):
            found = re.search(rb"UIDVALIDITY (\d+) HIGHESTMODSEQ (\d+)", line)
            state = int(found[1]), int(found[2])
        if line.startswith(tag + b" "):
            return state


async def main(args: argparse.Namespace) -> None:
    client = await Client.connect(args.host, args.port)
    await client.command(b'LOGIN %s "%s"' % (args.user.encode(), args.password.encode()))
    await fill(client, args.messages)
    await sign_ins(args)
    cold, warm, _ = await timed(client, b"SELECT bench")
    print(f"SELECT bench: first {cold * 1000:.1f} ms, warm median {warm * 1000:.1f} ms")
    cold, warm, _ = await timed(client, b"STATUS bench (MESSAGES UNSEEN)")
    print(f"STATUS bench (MESSAGES UNSEEN): first {cold * 1000:.1f} ms, warm median {warm * 1000:.1f} ms")
    for label, command in (
        (
            "UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
            b"UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
        ),
        ("UID SEARCH FROM sender7 SUBJECT topic", b"UID SEARCH FROM sender7 SUBJECT topic"),
        ("UID SEARCH UNSEEN", b"UID SEARCH UNSEEN"),
        ("UID SEARCH 1:* FLAGGED", b"UID SEARCH 1:* FLAGGED"),
    ):
        cold, warm, size = await timed(client, command)
        print(f"{label}: first {cold * 1000:.1f} ms, warm median {warm * 1000:.1f} ms ({size} bytes)")
    await header_fields(client, args.pid)
    if args.big:
        await big_folder(args, client)
    await client.command(b"LOGOUT")
    if args.idle:
        await idle_sessions(args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1143)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=100_000, help="messages of the resync and TEXT folder (0: skip)")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--pid", type=int, help="imapd process id, to measure the memory of IDLE sessions")
    asyncio.run(main(parser.parse_args()))
