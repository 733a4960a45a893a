"""Fixtures shared by the whole suite: accounts, TLS trust, and real listeners on ephemeral ports."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pytest
from django.conf import settings as django_settings
from django.db import connection

from mailboxes import actions, asyncdb
from mailboxes.models import Account, Domain
from mailsite.runtime import Listener, start_protocols

PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_account(db) -> Callable[..., Account]:
    """Create an account (and its domain when new): make_account("alice@example.com", quota_bytes=...)."""

    def make(address: str, password: str = PASSWORD, **options) -> Account:
        domain = address.rpartition("@")[2].lower()
        if not Domain.objects.filter(name=domain).exists():
            actions.create_domain(domain)
        return actions.create_account(address, password, **options)

    return make


@pytest.fixture
def tls_client_context() -> ssl.SSLContext:
    """A client context that trusts the suite's test CA (the listeners' certificate is issued by it)."""
    return ssl.create_default_context(cafile=django_settings.TEST_CA_FILE)


class LoopThread:
    """An asyncio event loop in a background thread, for servers under test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-listeners", daemon=True)
        self.thread.start()

    def run(self, coroutine) -> object:
        future: Future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=30)

    def stop(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="session")
def end_stray_connections(django_db_setup, django_db_blocker) -> Iterator[None]:
    """At the end of the session, end connections that servers under test left to the test database.

    Servers run in other threads (database pools, the change hub's LISTEN connection); a connection whose
    owner was cancelled mid-step can outlive it, and PostgreSQL refuses to drop a database still in use.
    """
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def listeners(transactional_db, settings, end_stray_connections) -> Iterator[Callable[..., dict[str, Listener]]]:
    """Start protocol packages' real listeners on ephemeral ports: listeners("smtpd") -> {"smtp": ...}.

    Every port setting is 0 so the OS picks free ports; each Listener reports the port it got. The shared limits
    (connections per client IP, rates) get a Redis prefix of this test's own: the leases of sessions an earlier
    test left open are removed by another thread as its listeners close, and must not take a place from this
    test's clients meanwhile.
    """
    settings.MAILSITE_LIMITS_PREFIX = f"{settings.MAILSITE_LIMITS_PREFIX}{secrets.token_hex(4)}:"
    # dir() of pytest-django's settings wrapper lists none of the settings; list them on Django's object.
    for name in dir(django_settings):
        if name.startswith("MAILSITE_") and name.endswith("_PORT"):
            setattr(settings, name, 0)
    loop = LoopThread()
    started: list[Listener] = []

    def start(*protocols: str) -> dict[str, Listener]:
        new = loop.run(start_protocols(protocols))
        started.extend(new)
        return {listener.name: listener for listener in new}

    yield start
    for listener in started:
        loop.run(listener.close())
    loop.stop()
    asyncdb.shutdown()
