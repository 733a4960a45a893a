"""IMAP import throughput: messages per second `importimap` copies from a local Mailsite IMAP server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailsite_bench .venv/bin/python bench/import_imap.py \\
        [--messages 2000] [--folders 10] [--max-rate 0]

The database is migrated first: use a scratch database. `manage.py imapd` runs as its own process on free
loopback ports (plain IMAP) and serves a source account filled with --messages varied messages (2-40 KB of
text, every 50th with a 200 KB attachment, random flags and keywords) over --folders folders; the import runs
in this process into a fresh account, as `manage.py importimap` does. Printed: messages and bytes imported,
wall time, messages and MB per second; then the time of a second run, which finds everything imported.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "bench password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sample(rng: random.Random, number: int) -> bytes:
    text = "".join(
        f"Line {line} of message {number}, some words to make it look like mail.\r\n"
        for line in range(rng.randrange(25, 500))
    )
    head = (
        f"From: Sender {number % 97} <sender{number % 97}@example.org>\r\nTo: bench@bench-source.test\r\n"
        f"Subject: Import benchmark {number}\r\nMessage-ID: <import.{number}@example.org>\r\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
    if number % 50:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    attachment = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n" * 5600
    return (
        head
        + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
        + text
        + "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + "--b--\r\n"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--folders", type=int, default=10)
    parser.add_argument("--max-rate", type=float, default=0.0, help="as importimap --max-rate (0: no limit)")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="mailsite-bench-import-")
    os.environ.setdefault("MAILSITE_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["MAILSITE_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from mailboxes import actions
    from mailboxes.models import Account, Domain, Mailbox
    from transfer.imap_import import Importer
    from transfer.imap_source import Endpoint

    call_command("migrate", verbosity=0)
    for domain in ("bench-source.test", "bench-target.test"):
        if not Domain.objects.filter(name=domain).exists():
            actions.create_domain(domain)
    run = secrets.token_hex(4)
    source = actions.create_account(f"source-{run}@bench-source.test", PASSWORD)
    target = actions.create_account(f"target-{run}@bench-target.test", PASSWORD)
    rng = random.Random(1)
    names = ["INBOX"] + [f"Folder {n}" for n in range(1, args.folders)]
    for name in names[1:]:
        actions.create_mailbox(source, name)
    folders = {m.name: m.pk for m in Mailbox.objects.filter(account=source)}
    flags = ["\\Seen", "\\Answered", "\\Flagged", "$Forwarded", "todo"]
    total_bytes = 0
    for number in range(args.messages):
        raw = sample(rng, number)
        total_bytes += len(raw)
        actions.append(source, folders[names[number % len(names)]], raw, flags=rng.sample(flags, rng.randrange(3)))
    print(f"source: {args.messages} messages, {total_bytes / 1e6:.1f} MB in {len(names)} folders")

    port = free_port()
    env = dict(os.environ, MAILSITE_IMAP_PORT=str(port), MAILSITE_IMAPS_PORT=str(free_port()))
    server = subprocess.Popen([sys.executable, "manage.py", "imapd"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        endpoint = Endpoint("127.0.0.1", port, source.address, PASSWORD, "plain")
        importer = Importer(
            Account.objects.get(pk=target.pk),
            endpoint,
            max_size=settings.MAILSITE_MAX_MESSAGE_SIZE,
            max_rate=args.max_rate,
        )
        started = time.perf_counter()
        report = importer.run()
        elapsed = time.perf_counter() - started
        print(
            f"import: {report.total} messages, skipped {len(report.skipped)}, in {elapsed:.2f} s: "
            f"{report.total / elapsed:.0f} messages/s, {total_bytes / 1e6 / elapsed:.1f} MB/s"
        )
        started = time.perf_counter()
        again = Importer(Account.objects.get(pk=target.pk), endpoint, max_size=settings.MAILSITE_MAX_MESSAGE_SIZE).run()
        print(f"second run (nothing new): {again.already} found imported in {time.perf_counter() - started:.2f} s")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
