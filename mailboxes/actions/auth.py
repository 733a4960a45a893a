"""Sign-in for every protocol, throttled per address and per client IP.

A sign-in is three steps, so that Argon2 (a CPU-bound while by design) never runs inside a transaction or
on a listener's database threads: `candidate` reads the throttle counts and the account's hash, the hash is
checked with no database work at all (listeners do it in `mailboxes/signin.py`'s own thread pool), and
`record` writes the outcome in one small transaction. `authenticate` runs the three in a row for callers
that are not in an event loop.

Like Dovecot's auth cache, a successful check of a main password is remembered for
MAILSITE_PASSWORD_CACHE_SECONDS in this process's memory (never on disk), so a phone that signs in every few
seconds pays for Argon2 once a minute. The entry's key is an HMAC (keyed with the site's secret) of the
address, the password and the stored hash: a changed password changes the stored hash, so the old entry can
never match again, and whether the main password is allowed at all (app passwords required) is read afresh
at every sign-in.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from django.utils import timezone

from credentials import verify as credential_checks
from mailboxes.actions import flights
from mailboxes.actions.locks import action
from mailboxes.models import Account, AuthFailure, Domain
from ops import metrics

log = logging.getLogger("mailboxes.signin")


@dataclass(frozen=True)
class AuthResult:
    account: Account | None
    throttled: bool = False
    app_password_id: int | None = None  # the app password signed in with: revoking it ends the session

    @property
    def ok(self) -> bool:
        return self.account is not None


@dataclass(frozen=True)
class Candidate:
    """What a sign-in needs to check a secret: the account that may sign in, and the hash to check against."""

    address: str
    account: Account | None  # None: unknown, disabled, or its domain disabled
    password_hash: str
    throttled: bool
    # The app passwords allowed for the protocol, and whether the main password is (credentials/verify.py).
    options: credential_checks.SignInOptions = credential_checks.MAIN_PASSWORD_ONLY
    failures: int = 0  # the address's recent failures: a success clears them, when there are some


@dataclass(frozen=True)
class Verified:
    """`verify`'s answer: true when the secret is right, with the app password it was, if it was one."""

    ok: bool
    app_password_id: int | None = None

    def __bool__(self) -> bool:
        return self.ok


@functools.cache
def _dummy_hash() -> str:
    # An unknown or disabled account is checked against this, so it costs the same time as a wrong password.
    return make_password("not the password of anyone")


# The account that may sign in with this address (its domain active too): a fixed statement, as for the failures
# below; compiling the queryset cost more than running it.
_ACCOUNT_FIELDS = [field.attname for field in Account._meta.concrete_fields]
_ACCOUNT_SQL = (
    f"SELECT {', '.join(f'a.{field.column}' for field in Account._meta.concrete_fields)} "
    f"FROM {Account._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id "
    "WHERE a.address = %s AND a.is_active AND d.active"
)
# The address's and the client's recent failures, both in one fixed statement (no IP: none counted for it, as
# `remote_ip = NULL` matches nothing).
_FAILURES_SQL = (
    "SELECT SUM(CASE WHEN address = %s THEN 1 ELSE 0 END), SUM(CASE WHEN remote_ip = %s THEN 1 ELSE 0 END) "
    f"FROM {AuthFailure._meta.db_table} WHERE (address = %s OR remote_ip = %s) AND created >= %s"
)


def candidate(address: str, *, remote_ip: str | None, protocol: str = "web") -> Candidate:
    """Read step: after MAILSITE_AUTH_MAX_FAILURES failures for an address (or MAILSITE_AUTH_MAX_IP_FAILURES from
    one IP) within MAILSITE_AUTH_WINDOW seconds, further attempts are throttled without checking the secret."""
    address = address.strip().lower()
    since = timezone.now() - datetime.timedelta(seconds=settings.MAILSITE_AUTH_WINDOW)
    ip = remote_ip or None
    statements: list[tuple[str, list]] = [
        (_FAILURES_SQL, [address, ip, address, ip, connection.ops.adapt_datetimefield_value(since)]),
        (_ACCOUNT_SQL, [address]),
    ]
    allowed = credential_checks.for_sign_in(address, protocol)
    [counts, accounts, *allowed_rows] = flights.read(statements if allowed is None else [*statements, allowed])
    failures, by_ip = (count or 0 for count in counts[0])
    throttled = failures >= settings.MAILSITE_AUTH_MAX_FAILURES or by_ip >= settings.MAILSITE_AUTH_MAX_IP_FAILURES
    account = Account.from_db(connection.alias, _ACCOUNT_FIELDS, accounts[0]) if accounts else None
    if throttled or account is None:
        return Candidate(address, None, _dummy_hash(), throttled)
    options = credential_checks.options(allowed_rows[0] if allowed_rows else None, protocol)
    # A main password the account refuses here (app passwords required) costs the same work as a wrong one.
    password_hash = account.password if options.main_password_allowed else _dummy_hash()
    return Candidate(address, account, password_hash, False, options, failures)


def verify(found: Candidate, password: str) -> Verified:
    """The CPU step: no database. False for unknown accounts, after the same work as for a wrong password.
    An app password allowed for the protocol is a digest comparison; every failure pays for Argon2."""
    known = verify_at_once(found, password)
    if known is not None:
        return known
    if found.account is None or not found.options.main_password_allowed:
        check_password(password, found.password_hash)  # the same work as a wrong password
        return Verified(False)
    return check_again(found, password)


def check_again(found: Candidate, password: str) -> Verified:
    """Argon2 for an account's main password, past the cache, which a match renews (or fills)."""
    matches = check_password(password, found.password_hash)
    if matches:
        _remember(_cache_key(found, password))
    return Verified(matches)


def verify_at_once(found: Candidate, password: str) -> Verified | None:
    """`verify`'s answer when it takes no Argon2 (microseconds: a listener gives it no thread of its own): a
    throttled try, an app password (a digest), a main password the cache knows; else None."""
    if found.throttled:
        return Verified(False)
    app_password_id = credential_checks.match_app_password(found.options, password)
    if app_password_id is not None and found.account is not None:
        return Verified(True, app_password_id)
    if found.account is None or not found.options.main_password_allowed:
        return None
    if _cache.get(_cache_key(found, password), 0.0) > time.monotonic():
        return Verified(True)
    return None


_cache: dict[bytes, float] = {}  # keyed hash -> monotonic expiry
_CACHE_SIZE = 10_000
_renewing: set[bytes] = set()  # entries whose check before they run out is under way
_renewing_lock = threading.Lock()


def renewal_due(found: Candidate, password: str) -> bool:
    """For a sign-in the cache answered: whether it should have the secret checked again, after its answer and
    off the database threads, so that the entry is renewed before it runs out. True for one sign-in per entry in
    the last quarter of its lifetime. Else, when an entry ran out, every client of the account signing in at
    that moment paid for Argon2 together (the IMAP mix's connect+LOGIN p99: 72 ms in a round where the entry ran
    out, against 36-43)."""
    key = _cache_key(found, password)
    left = _cache.get(key, 0.0) - time.monotonic()
    if not 0 < left < settings.MAILSITE_PASSWORD_CACHE_SECONDS / 4:
        return False
    with _renewing_lock:
        if key in _renewing:
            return False
        _renewing.add(key)
    return True


@functools.cache
def _cache_secret(secret_key: str) -> bytes:
    return hashlib.sha256(b"mailsite password cache " + secret_key.encode()).digest()


def _cache_key(found: Candidate, password: str) -> bytes:
    secret = _cache_secret(settings.SECRET_KEY)
    message = "\0".join((found.address, password, found.password_hash)).encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).digest()


def _remember(key: bytes) -> None:
    lifetime = settings.MAILSITE_PASSWORD_CACHE_SECONDS
    if lifetime <= 0:
        return
    now = time.monotonic()
    if len(_cache) >= _CACHE_SIZE:
        for stale in [k for k, expiry in _cache.items() if expiry <= now] or list(_cache)[: _CACHE_SIZE // 10]:
            del _cache[stale]
        with _renewing_lock:
            _renewing.intersection_update(_cache)
    _cache[key] = now + lifetime
    with _renewing_lock:
        _renewing.discard(key)


def record(found: Candidate, ok: Verified | bool, *, remote_ip: str | None, protocol: str) -> AuthResult:
    """Write step: a success clears the address's failures, a failure is counted (throttled tries are not).

    A listener's common success (no failures to clear, no app password to stamp) is the sign-in's one listing
    statement, its own transaction, where `flights.usable()`."""
    app_password_id = ok.app_password_id if isinstance(ok, Verified) else None
    if ok and found.account is not None and not found.failures and app_password_id is None and flights.usable():
        return _succeeded(found.account, found, None, remote_ip=remote_ip, protocol=protocol)
    return _record(found, ok, remote_ip=remote_ip, protocol=protocol)


@action
def _record(found: Candidate, ok: Verified | bool, *, remote_ip: str | None, protocol: str) -> AuthResult:
    if found.throttled:
        _signed_in(found, protocol, remote_ip, "throttled")
        return AuthResult(None, throttled=True)
    if ok and found.account is not None:
        if found.failures:
            AuthFailure.objects.filter(address=found.address).delete()
        app_password_id = ok.app_password_id if isinstance(ok, Verified) else None
        return _succeeded(found.account, found, app_password_id, remote_ip=remote_ip, protocol=protocol)
    since = timezone.now() - datetime.timedelta(seconds=settings.MAILSITE_AUTH_WINDOW)
    AuthFailure.objects.filter(created__lt=since).delete()
    AuthFailure.objects.create(address=found.address[:320], remote_ip=remote_ip or None, protocol=protocol)
    _signed_in(found, protocol, remote_ip, "failure")
    return AuthResult(None)


def _succeeded(
    account: Account, found: Candidate, app_password_id: int | None, *, remote_ip: str | None, protocol: str
) -> AuthResult:
    credential_checks.record(account.pk, app_password_id, protocol=protocol, remote_ip=remote_ip)
    _signed_in(found, protocol, remote_ip, "success")
    return AuthResult(account, app_password_id=app_password_id)


def _signed_in(found: Candidate, protocol: str, remote_ip: str | None, result: str) -> None:
    """One line and one count per sign-in, for every protocol (never the password)."""
    metrics.AUTH.labels(protocol, result).inc()
    log.info("login protocol=%s user=%r client=%s result=%s", protocol, found.address, remote_ip or "-", result)


class Settled(NamedTuple):
    found: Candidate
    result: AuthResult | None  # None: the secret needs Argon2 (`verify`), then `record`
    renew: bool = False  # the cache answered, and its entry should be checked again (`renewal_due`)


def settle_at_once(address: str, password: str, *, remote_ip: str | None, protocol: str) -> Settled:
    """A listener's sign-in in one call from its event loop when the secret needs no Argon2 (`verify_at_once`):
    read, check, record, and the result; else the candidate alone, for `verify` off the database threads and
    `record`."""
    found = candidate(address, remote_ip=remote_ip, protocol=protocol)
    ok = verify_at_once(found, password)
    if ok is None:
        return Settled(found, None)
    result = record(found, ok, remote_ip=remote_ip, protocol=protocol)
    return Settled(found, result, bool(ok) and ok.app_password_id is None and renewal_due(found, password))


def authenticate(address: str, password: str, *, remote_ip: str | None, protocol: str) -> AuthResult:
    """Check a login for any protocol. Unknown addresses, wrong passwords and disabled accounts all fail the
    same way and take the same time."""
    found = candidate(address, remote_ip=remote_ip, protocol=protocol)
    return record(found, verify(found, password), remote_ip=remote_ip, protocol=protocol)
