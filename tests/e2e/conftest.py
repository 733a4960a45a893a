"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dns_server import DnsServer
from tests.relay_support import MX1, RELAY_QUEUE, CeleryWorker, Sinks, worker_env
from tests.smtp_support import RawSession
from tests.webmail_support import WebServer


@pytest.fixture
def raw_smtp() -> Iterator[Callable[..., RawSession]]:
    """Open line-level SMTP sessions (raw_smtp(port, context=...)); all are closed after the test."""
    opened: list[RawSession] = []

    def open_session(port: int, **options) -> RawSession:
        opened.append(RawSession(port, **options))
        return opened[-1]

    yield open_session
    for session in opened:
        session.close()


@pytest.fixture(scope="module")
def web_server(end_stray_connections) -> Iterator[WebServer]:
    """The webmail under uvicorn (ASGI) in a thread, for the browser tests of one module."""
    web = WebServer()
    yield web
    web.stop()


PORT_SETTINGS = [
    "MAILSITE_SMTP_PORT",
    "MAILSITE_SUBMISSION_PORT",
    "MAILSITE_SMTPS_PORT",
    "MAILSITE_POP3_PORT",
    "MAILSITE_POP3S_PORT",
    "MAILSITE_IMAP_PORT",
    "MAILSITE_IMAPS_PORT",
    "MAILSITE_MANAGESIEVE_PORT",
    "MAILSITE_HTTP_PORT",
]


def free_port() -> int:
    """A free port for a server that another process binds later. It is picked below the kernel's ephemeral
    range, so the outgoing connections and port-0 listeners of tests running meanwhile cannot take it first."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    while True:
        port = random.randrange(10000, ephemeral_low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@pytest.fixture
def bare_environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    """What a bare machine has: no database or broker settings, so SQLite and the embedded broker are used.

    Only DNS points at a loopback server of the test's (where every name is NXDOMAIN), so the relay's
    lookups never leave the machine.
    """
    dns = DnsServer()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSITE_", "DATABASE_URL", "DJANGO_"))}
    env["MAILSITE_DATA_DIR"] = str(tmp_path / "var")
    env["MAILSITE_DNS_NAMESERVERS"] = dns.address
    env.update({name: str(free_port()) for name in PORT_SETTINGS})
    yield env
    dns.close()


@pytest.fixture
def outside(transactional_db, settings, tmp_path) -> Iterator[tuple[DnsServer, Sinks]]:
    """The remote world: example.net's MX on a loopback sink, and a relay worker that can reach it."""
    dns_server = DnsServer()
    dns_server.add("example.net", "MX", "10 mx1.example.net.")
    dns_server.add("mx1.example.net", "A", MX1)
    sinks = Sinks()
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    worker = CeleryWorker(tmp_path / "worker", worker_env(dns_server, sinks))
    worker.start()
    yield dns_server, sinks
    worker.stop()
    sinks.stop_all()
    dns_server.close()
