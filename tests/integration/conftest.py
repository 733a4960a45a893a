"""Fixtures shared by the relay's integration tests: the loopback DNS server and the SMTP sinks it points at."""

from collections.abc import Iterator

import pytest

from tests.dns_server import DnsServer
from tests.relay_support import Sinks


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def sinks() -> Iterator[Sinks]:
    started = Sinks()
    yield started
    started.stop_all()
