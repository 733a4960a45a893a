"""The cache of checked passwords: a repeated sign-in skips Argon2, and nothing it remembers outlives a password
change or the account requiring app passwords."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import pq

from credentials import actions as credentials
from credentials.models import SignIn
from mailboxes import actions, asyncdb, signin
from mailboxes.actions import auth
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _empty_cache():
    auth._cache.clear()
    auth._renewing.clear()
    yield
    auth._cache.clear()
    auth._renewing.clear()


def _sign_in(password: str = PASSWORD, protocol: str = "imap") -> bool:
    return actions.authenticate("alice@example.com", password, remote_ip="192.0.2.1", protocol=protocol).ok


def test_a_repeated_sign_in_is_answered_from_the_cache(db, make_account):
    make_account("alice@example.com")
    assert _sign_in()
    assert len(auth._cache) == 1
    found = auth.candidate("alice@example.com", remote_ip=None, protocol="imap")
    key = auth._cache_key(found, PASSWORD)
    assert key in auth._cache
    assert PASSWORD.encode() not in key, "the key is a keyed hash, not the password"
    assert not _sign_in("wrong password")
    assert len(auth._cache) == 1, "failures are never remembered"


def test_a_password_change_ends_what_the_cache_knew(db, make_account):
    alice = make_account("alice@example.com")
    assert _sign_in()
    actions.set_password(alice, "a brand new password")
    assert not _sign_in()
    assert _sign_in("a brand new password")


def test_requiring_app_passwords_refuses_a_cached_main_password(db, make_account):
    alice = make_account("alice@example.com")
    assert _sign_in()
    credentials.set_require_app_passwords(alice, True)
    assert not _sign_in()


def test_no_cache_when_turned_off(db, make_account, settings):
    settings.MAILSITE_PASSWORD_CACHE_SECONDS = 0
    make_account("alice@example.com")
    assert _sign_in()
    assert not auth._cache


def test_a_listeners_repeated_sign_in_takes_no_argon2_thread_and_one_write(transactional_db, make_account):
    """What a listener does (mailboxes/signin.py): its reads go in one flight, a secret the cache knows is answered
    at once, without the Argon2 pool, and the success's record is one statement, outside any transaction."""
    alice = make_account("alice@example.com")
    flying: list[bool] = []

    def in_flight(execute, sql, params, many, context):
        if connection.vendor == "postgresql":
            flying.append(connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(in_flight):
        found = auth.candidate("alice@example.com", remote_ip="192.0.2.1", protocol="imap")
    if connection.vendor == "postgresql":
        assert flying == [True] * 5, "BEGIN, the failures, the account, its sign-in options, COMMIT: one flight"
    assert found.account == alice
    assert found.options.main_password_allowed
    assert auth.verify_at_once(found, PASSWORD) is None, "the first check needs Argon2"
    assert auth.verify_at_once(found, "wrong password") is None
    assert _sign_in()
    ok = auth.verify_at_once(found, PASSWORD)
    assert ok is not None
    assert ok.ok
    assert auth.verify_at_once(found, "wrong password") is None, "a wrong one still pays for Argon2"
    with CaptureQueriesContext(connection) as queries:
        assert auth.record(found, ok, remote_ip="192.0.2.1", protocol="imap").account == alice
    if connection.vendor == "postgresql":
        assert len(queries) == 1
    assert (
        list(SignIn.objects.filter(account=alice).values_list("protocol", "remote_ip")) == [("imap", "192.0.2.1")] * 2
    )


def test_a_listeners_repeated_sign_in_is_one_trip_to_a_database_thread(transactional_db, make_account, monkeypatch):
    """mailboxes/signin.py: a secret the cache knows is read, checked and recorded in one `asyncdb.call`; the first
    sign-in and a wrong password take the candidate back for Argon2, with nothing recorded before it."""
    alice = make_account("alice@example.com")
    trips: list[str] = []
    real_call = asyncdb.call

    async def counted(func, *args, **kwargs):
        trips.append(func.__name__)
        return await real_call(func, *args, **kwargs)

    monkeypatch.setattr(asyncdb, "call", counted)

    async def sign_in(password: str) -> auth.AuthResult:
        try:
            return await signin.authenticate("alice@example.com", password, remote_ip="192.0.2.1", protocol="imap")
        finally:
            await asyncio.to_thread(asyncdb.shutdown)

    assert asyncio.run(sign_in(PASSWORD)).account == alice
    assert trips == ["settle_at_once", "record"], "the first check goes to Argon2 between two trips"
    trips.clear()
    assert asyncio.run(sign_in(PASSWORD)).account == alice
    assert trips == ["settle_at_once"]
    trips.clear()
    assert not asyncio.run(sign_in("wrong password")).ok
    assert trips == ["settle_at_once", "record"]
    assert list(SignIn.objects.filter(account=alice).values_list("method", flat=True)) == ["password"] * 2
    settled = auth.settle_at_once("alice@example.com", "wrong password", remote_ip="192.0.2.1", protocol="imap")
    assert settled.result is None
    assert SignIn.objects.filter(account=alice).count() == 2, "nothing is recorded before the secret is checked"


def test_an_entry_in_steady_use_is_checked_again_before_it_runs_out(transactional_db, make_account, settings):
    """In the last quarter of its lifetime, one sign-in the cache answered has the secret checked again after its
    answer (mailboxes/signin.py), which renews the entry; the others meanwhile are answered from the cache."""
    settings.MAILSITE_PASSWORD_CACHE_SECONDS = 60
    alice = make_account("alice@example.com")

    async def sign_ins(count: int) -> list[auth.AuthResult]:
        try:
            found = [
                await signin.authenticate("alice@example.com", PASSWORD, remote_ip="192.0.2.1", protocol="imap")
                for _ in range(count)
            ]
            await asyncio.gather(*signin._renewals)
            return found
        finally:
            await asyncio.to_thread(asyncdb.shutdown)

    assert [result.account for result in asyncio.run(sign_ins(1))] == [alice]
    [key] = auth._cache
    first_expiry = auth._cache[key]
    assert asyncio.run(sign_ins(3))
    assert auth._cache[key] == first_expiry, "early in its lifetime an entry is only read"
    auth._cache[key] = time.monotonic() + 10  # its last quarter
    found = auth.candidate("alice@example.com", remote_ip="192.0.2.1", protocol="imap")
    assert auth.renewal_due(found, PASSWORD)
    assert not auth.renewal_due(found, PASSWORD), "one check per entry"
    auth._renewing.clear()
    assert [result.account for result in asyncio.run(sign_ins(3))] == [alice] * 3
    assert auth._cache[key] > time.monotonic() + 50, "checked again and renewed for a whole lifetime"
    assert not auth._renewing
    assert not auth.renewal_due(found, "wrong password"), "only what the cache holds is renewed"
