"""Relay throughput: messages a Celery worker with N processes delivers per second to one destination (a local
SMTP sink), with connection reuse off (a session per message) and on (a session carries up to --reuse messages).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailsite_bench MAILSITE_BROKER_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/relay.py --workers 4 --messages 1000

The database is migrated and its outbound queue emptied first: use a scratch database. A DNS server and an
aiosmtpd sink run in this process on loopback; each run starts a real `celery worker` process. Every message
is signed with DKIM when queued and has one recipient. Without reuse each one gets its own session (MX lookup,
EHLO, STARTTLS when --tls, MAIL, RCPT, DATA, QUIT); with reuse a session sends RSET and the next message. The
sink offers PIPELINING (as Postfix and the big providers do) unless --no-pipelining: a relay that pipelines
sends RSET, MAIL, RCPT and DATA in one write.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dns_server import DnsServer  # noqa: E402 - after the path set-up above

SINK_ADDRESS = "127.0.0.2"
QUEUE = "bench-relay"


class CountingSink:
    def __init__(self, pipelining: bool) -> None:
        self.count = 0
        self.sessions = 0
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        if session.ssl is None:  # EHLO again after STARTTLS is the same session
            self.sessions += 1
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        return "250 2.0.0 OK"


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def run(mode: str, reuse: int, args: argparse.Namespace, env: dict[str, str], sink: CountingSink) -> None:
    """Queue --messages messages, start a worker, and print how fast it delivers them all."""
    from django.db import transaction

    from mailboxes.actions import queueing
    from relay.models import OutboundMessage, OutboundRecipient, State

    OutboundMessage.objects.all().delete()
    sink.count = sink.sessions = 0
    body = ("x" * 76 + "\r\n") * max(1, args.size // 78)
    started = time.perf_counter()
    with transaction.atomic():
        for number in range(args.messages):
            raw = (
                f"From: bench@sender.example\r\nTo: user{number}@bench.example\r\nSubject: bench {number}\r\n"
                f"Message-ID: <bench{number}@sender.example>\r\n\r\n{body}"
            ).encode()
            queueing.enqueue(
                raw, "bench@sender.example", [f"user{number}@bench.example"], author_domain="sender.example"
            )
    queued = time.perf_counter()

    log_path = Path(env["MAILSITE_DATA_DIR"]) / f"worker-{mode}.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "--app", "mailsite.celery", "worker", "--queues", QUEUE, "--concurrency",
             str(args.workers), "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, env={**os.environ, **env, "MAILSITE_RELAY_REUSE_MESSAGES": str(reuse)}, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # The tasks wait in the broker until the worker is up: time from the first delivery to the last.
        deadline = time.monotonic() + 120
        while sink.count == 0:
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the worker did not deliver:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.01)
        first = time.perf_counter()
        delivered = 0
        while delivered < args.messages:
            time.sleep(0.05)
            delivered = OutboundRecipient.objects.filter(state=State.DELIVERED).count()
            if time.perf_counter() - first > 600:
                sys.exit(f"only {delivered} of {args.messages} delivered after 10 minutes")
        done = time.perf_counter()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    print(f"reuse {mode} (MAILSITE_RELAY_REUSE_MESSAGES={reuse}):")
    print(f"  queued (DKIM-signed, one transaction): {queued - started:.2f} s")
    print(f"  delivered: {done - first:.2f} s = {args.messages / (done - first):.1f} messages/s")
    print(f"  sink received {sink.count} messages in {sink.sessions} sessions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4, help="worker processes (celery --concurrency)")
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--size", type=int, default=4096, help="body size in bytes")
    parser.add_argument("--tls", action="store_true", help="the sink offers STARTTLS")
    parser.add_argument("--reuse", type=int, default=100, help="messages per session with reuse on")
    parser.add_argument("--no-pipelining", action="store_true", help="the sink does not offer PIPELINING")
    args = parser.parse_args()

    dns_server = DnsServer()
    dns_server.add("bench.example", "MX", "10 mx.bench.example.")
    dns_server.add("mx.bench.example", "A", SINK_ADDRESS)
    port = free_port(SINK_ADDRESS)
    env = {
        "MAILSITE_DATA_DIR": tempfile.mkdtemp(prefix="mailsite-bench-relay-"),
        "MAILSITE_DNS_NAMESERVERS": dns_server.address,
        "MAILSITE_RELAY_PORT": str(port),
        "MAILSITE_RELAY_QUEUE": QUEUE,
        "MAILSITE_HOSTNAME": "bench.mailsite.test",
    }
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.core.management import call_command

    from mailboxes import actions
    from mailboxes.models import Domain
    from mailsite import tls

    call_command("migrate", verbosity=0)
    if not Domain.objects.filter(name="sender.example").exists():
        actions.create_domain("sender.example")

    sink = CountingSink(pipelining=not args.no_pipelining)
    tls_context = None
    if args.tls:
        import ssl

        cert, key = tls.certificate_paths()
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(cert, key)
    controller = Controller(sink, hostname=SINK_ADDRESS, port=port, tls_context=tls_context, require_starttls=False)
    controller.start()
    print(
        f"workers: {args.workers}, messages: {args.messages}, body: {args.size} bytes, starttls: {args.tls},"
        f" PIPELINING offered: {not args.no_pipelining}"
    )
    try:
        run("off", 1, args, env, sink)
        run("on", args.reuse, args, env, sink)
    finally:
        controller.stop()
        dns_server.close()


if __name__ == "__main__":
    main()
