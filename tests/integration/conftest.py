"""Fixtures shared by integration tests: the loopback DNS server and the SMTP sinks the relay's tests point it at,
and a connection listening to the change hub."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection

from mailboxes import changes
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


@pytest.fixture
def listening(transactional_db) -> Iterator[psycopg.Connection]:
    """A connection of its own LISTENing on the change hub's channel (PostgreSQL: NOTIFY)."""
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL (NOTIFY): set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(f"LISTEN {changes.CHANNEL}")
        yield conn
