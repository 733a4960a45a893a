"""Fixtures shared by the relay's integration tests: the loopback DNS server and the SMTP sinks it points at."""

import uuid
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


@pytest.fixture
def relay_state(settings) -> None:
    """Dead-destination state of this test's own (Redis keys under a prefix of its own), for tests that run the
    relay's task in this process: a destination an earlier test left unreachable is not dead here."""
    settings.MAILSITE_LIMITS_PREFIX = f"mailsite:test-relay:{uuid.uuid4().hex}:"
