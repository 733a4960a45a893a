"""Sign-in for every protocol, throttled per address and per client IP.

A sign-in is three steps, so that Argon2 (a CPU-bound while by design) never runs inside a transaction or
on a listener's database threads: `candidate` reads the throttle counts and the account's hash, the hash is
checked with no database work at all (listeners do it in `asyncdb.check_password`'s own thread pool), and
`record` writes the outcome in one small transaction. `authenticate` runs the three in a row for callers
that are not in an event loop.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.utils import timezone

from mailboxes.actions.locks import action
from mailboxes.models import Account, AuthFailure


@dataclass(frozen=True)
class AuthResult:
    account: Account | None
    throttled: bool = False

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


@functools.cache
def _dummy_hash() -> str:
    # An unknown or disabled account is checked against this, so it costs the same time as a wrong password.
    return make_password("not the password of anyone")


def candidate(address: str, *, remote_ip: str | None) -> Candidate:
    """Read step: after MAILSITE_AUTH_MAX_FAILURES failures for an address (or MAILSITE_AUTH_MAX_IP_FAILURES from
    one IP) within MAILSITE_AUTH_WINDOW seconds, further attempts are throttled without checking the secret."""
    address = address.strip().lower()
    since = timezone.now() - datetime.timedelta(seconds=settings.MAILSITE_AUTH_WINDOW)
    recent = AuthFailure.objects.filter(created__gte=since)
    throttled = recent.filter(address=address).count() >= settings.MAILSITE_AUTH_MAX_FAILURES or bool(
        remote_ip and recent.filter(remote_ip=remote_ip).count() >= settings.MAILSITE_AUTH_MAX_IP_FAILURES
    )
    account = (
        Account.objects.select_related("domain").filter(address=address, is_active=True, domain__active=True).first()
    )
    if throttled or account is None:
        return Candidate(address, None, _dummy_hash(), throttled)
    return Candidate(address, account, account.password, False)


def verify(found: Candidate, password: str) -> bool:
    """The CPU step: no database. False for unknown accounts, after the same work as for a wrong password."""
    if found.throttled:
        return False
    matches = check_password(password, found.password_hash)
    return matches and found.account is not None


@action
def record(found: Candidate, ok: bool, *, remote_ip: str | None, protocol: str) -> AuthResult:
    """Write step: a success clears the address's failures, a failure is counted (throttled tries are not)."""
    if found.throttled:
        return AuthResult(None, throttled=True)
    if ok and found.account is not None:
        AuthFailure.objects.filter(address=found.address).delete()
        return AuthResult(found.account)
    since = timezone.now() - datetime.timedelta(seconds=settings.MAILSITE_AUTH_WINDOW)
    AuthFailure.objects.filter(created__lt=since).delete()
    AuthFailure.objects.create(address=found.address[:320], remote_ip=remote_ip or None, protocol=protocol)
    return AuthResult(None)


def authenticate(address: str, password: str, *, remote_ip: str | None, protocol: str) -> AuthResult:
    """Check a login for any protocol. Unknown addresses, wrong passwords and disabled accounts all fail the
    same way and take the same time."""
    found = candidate(address, remote_ip=remote_ip)
    return record(found, verify(found, password), remote_ip=remote_ip, protocol=protocol)
