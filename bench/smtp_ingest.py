"""SMTP ingest throughput: accepted-and-stored messages per second over N parallel sessions.

    DATABASE_URL=postgres://... .venv/bin/python bench/smtp_ingest.py --host 127.0.0.1 --port 2525 \\
        --sessions 20 --messages 4000 --size 1024

Each session connects once and sends its share of the messages, pipelining MAIL/RCPT/DATA (RFC 2920), to one
local recipient, or with --recipients K to bench1@... benchK@... (session i to recipient i mod K), which
spreads the deliveries over K Inboxes instead of contending for one folder's row lock. Recipients are created
when missing (through the same DATABASE_URL the listener uses), and the figure counts only messages both
answered 250 and found stored afterwards, so a server that answers 250 without storing scores nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")


def _message(size: int, number: int) -> bytes:
    head = (
        f"From: bench@sender.test\r\nTo: {{rcpt}}\r\nSubject: bench {number}\r\n"
        f"Message-ID: <bench.{number}.{time.time_ns()}@sender.test>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def _session(host: str, port: int, count: int, size: int, rcpt: str, first: int) -> int:
    """Messages answered 250 in one session; a session the server closes early counts what it got."""
    accepted = [0]
    try:
        await _transactions(host, port, count, size, rcpt, first, accepted)
    except ConnectionError as exc:
        print(f"a session ended early: {exc}", file=sys.stderr)
    return accepted[0]


async def _transactions(
    host: str, port: int, count: int, size: int, rcpt: str, first: int, accepted: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await _reply(reader)
    writer.write(b"EHLO bench.sender.test\r\n")
    await _reply(reader)
    for number in range(first, first + count):
        body = _message(size, number).replace(b"{rcpt}", rcpt.encode())
        writer.write(f"MAIL FROM:<bench@sender.test> SIZE={len(body)}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        replies = [await _reply(reader) for _ in range(3)]
        if not replies[2].startswith(b"354"):
            writer.write(b"RSET\r\n")
            await _reply(reader)
            continue
        writer.write(body + b".\r\n")
        if (await _reply(reader)).startswith(b"250"):
            accepted[0] += 1
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


def _recipients(args: argparse.Namespace) -> list[str]:
    """Session i sends to recipient i modulo --recipients (bench1@..., bench2@..., or --recipient alone)."""
    if args.recipients == 1:
        return [args.recipient]
    local, _, domain = args.recipient.rpartition("@")
    return [f"{local}{n}@{domain}" for n in range(1, args.recipients + 1)]


def _stored(rcpts: list[str]) -> int:
    from mailboxes.models import Message

    return Message.objects.filter(account__address__in=rcpts).count()


def _ensure_recipient(rcpt: str) -> None:
    from mailboxes import services
    from mailboxes.models import Account, Domain

    domain = rcpt.rpartition("@")[2]
    if not Domain.objects.filter(name=domain).exists():
        services.create_domain(domain)
    if not Account.objects.filter(address=rcpt).exists():
        services.create_account(rcpt, None)


async def _run(args: argparse.Namespace) -> tuple[int, float]:
    share, extra = divmod(args.messages, args.sessions)
    counts = [share + (1 if i < extra else 0) for i in range(args.sessions)]
    starts = [sum(counts[:i]) for i in range(args.sessions)]
    began = time.perf_counter()
    recipients = _recipients(args)
    accepted = await asyncio.gather(
        *(
            _session(args.host, args.port, count, args.size, recipients[i % len(recipients)], start)
            for i, (count, start) in enumerate(zip(counts, starts, strict=True))
        )
    )
    return sum(accepted), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000, help="total messages over all sessions")
    parser.add_argument("--size", type=int, default=1024, help="message size in bytes")
    parser.add_argument("--recipient", default="bench@bench.test")
    parser.add_argument(
        "--recipients", type=int, default=1, help="spread sessions over this many accounts (one Inbox lock each)"
    )
    args = parser.parse_args()

    import django

    django.setup()
    rcpts = _recipients(args)
    for rcpt in rcpts:
        _ensure_recipient(rcpt)
    before = _stored(rcpts)
    accepted, elapsed = asyncio.run(_run(args))
    stored = _stored(rcpts) - before
    print(
        f"sessions={args.sessions} recipients={args.recipients} messages={args.messages} size={args.size} "
        f"accepted={accepted} stored={stored} seconds={elapsed:.2f} rate={min(accepted, stored) / elapsed:.0f} msg/s"
    )


if __name__ == "__main__":
    main()
