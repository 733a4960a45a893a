"""Writers of the credentials tables: one function and one transaction each.

Revoking an app password ends the sessions signed in with it, in every process: the revocation is announced
on the change hub's channel (`mailboxes.changes`) as the negated id of the app password, in the same
transaction, so the watching sessions (`credentials.revocation`) hear of it exactly when the row is gone. Folder ids are
positive, so no folder is mistaken for it; the webmail's live updates just refresh once.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone

from credentials import tokens, totp
from credentials.models import (
    MAIL_PROTOCOLS,
    AppPassword,
    Passkey,
    RecoveryCode,
    SecurityOptions,
    SignIn,
    TotpDevice,
    WebSession,
)
from mailboxes import changes
from mailboxes.models import Account

SIGN_IN_DAYS = 30  # how long sign-ins are listed for the account owner


class CredentialError(ValueError):
    """A request the user can correct: unknown name, duplicate name, no protocol, ..."""


def parse_protocols(protocols: Iterable[str]) -> list[str]:
    chosen = sorted({p.strip().lower() for p in protocols if p.strip()})
    unknown = [p for p in chosen if p not in MAIL_PROTOCOLS]
    if unknown:
        raise CredentialError(f"unknown protocol {', '.join(unknown)}; choose from {', '.join(MAIL_PROTOCOLS)}")
    if not chosen:
        raise CredentialError("choose at least one protocol")
    return chosen


@transaction.atomic
def create_app_password(account: Account, name: str, protocols: Iterable[str]) -> tuple[AppPassword, str]:
    """A new app password; the secret is returned once and only its digest is kept."""
    name = name.strip()
    if not name or len(name) > 100:
        raise CredentialError("an app password needs a name of 1 to 100 characters")
    chosen = parse_protocols(protocols)
    if AppPassword.objects.filter(account=account, name=name).exists():
        raise CredentialError(f"there is already an app password named {name!r}")
    secret = tokens.new_app_password()
    row = AppPassword.objects.create(
        account=account, name=name, protocols=",".join(chosen), digest=tokens.digest(secret)
    )
    return row, secret


def revocation_note(app_password_id: int) -> int:
    """What the change hub carries when this app password is revoked (see the module docstring)."""
    return -app_password_id


@transaction.atomic
def revoke_app_password(account: Account, name: str) -> None:
    row = AppPassword.objects.filter(account=account, name=name).first()
    if row is None:
        raise CredentialError(f"no app password named {name!r}")
    app_password_id = row.pk
    row.delete()
    changes.notify(account.pk, revocation_note(app_password_id))


@transaction.atomic
def set_require_app_passwords(account: Account, required: bool) -> None:
    SecurityOptions.objects.update_or_create(account=account, defaults={"require_app_passwords": required})


def record_sign_in(account_id: int, protocol: str, remote_ip: str | None, method: str) -> None:
    """Called by the authentication's write step; old records of the account go at the same time (on PostgreSQL in
    the same statement, which a listener runs as its own transaction)."""
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    expire = [account_id, adapt(now - datetime.timedelta(days=SIGN_IN_DAYS))]
    listed = [account_id, adapt(now), protocol, remote_ip or None, method[:120]]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement, so that a listener may run it as its own transaction
            cursor.execute(f"WITH expired AS ({_EXPIRE_SQL}) {_RECORD_SQL}", [*expire, *listed])
        else:
            cursor.execute(_EXPIRE_SQL, expire)
            cursor.execute(_RECORD_SQL, listed)


# Fixed statements: a mail client's every sign-in runs them (querysets would be compiled each time).
_EXPIRE_SQL = f"DELETE FROM {SignIn._meta.db_table} WHERE account_id = %s AND created < %s"
_RECORD_SQL = (
    f"INSERT INTO {SignIn._meta.db_table} (account_id, created, protocol, remote_ip, method) "
    "VALUES (%s, %s, %s, %s, %s)"
)


@transaction.atomic
def new_recovery_codes(account: Account) -> list[str]:
    """Ten fresh single-use codes, replacing any earlier ones."""
    codes = [tokens.new_recovery_code() for _ in range(tokens.RECOVERY_CODES)]
    RecoveryCode.objects.filter(account=account).delete()
    RecoveryCode.objects.bulk_create(RecoveryCode(account=account, digest=tokens.digest(code)) for code in codes)
    return codes


# --- Two-factor sign-in (TOTP, recovery codes) ------------------------------------------------------------------


def totp_enabled(account_id: int) -> bool:
    return TotpDevice.objects.filter(account_id=account_id, confirmed__isnull=False).exists()


def second_factor_required(account_id: int) -> bool:
    """Whether signing in to the webmail or admin takes a second step: a TOTP app or a passkey is set up."""
    return totp_enabled(account_id) or Passkey.objects.filter(account_id=account_id).exists()


@transaction.atomic
def start_totp(account: Account) -> str:
    """A fresh secret for enrolment, replacing an unconfirmed one; refused while a confirmed one exists."""
    if totp_enabled(account.pk):
        raise CredentialError("two-factor sign-in is already on; turn it off first")
    secret = totp.new_secret()
    TotpDevice.objects.update_or_create(account=account, defaults={"secret": secret, "confirmed": None, "last_step": 0})
    return secret


@transaction.atomic
def confirm_totp(account: Account, code: str) -> list[str]:
    """Turn two-factor sign-in on once the app shows a right code; returns the ten recovery codes."""
    device = TotpDevice.objects.filter(account=account, confirmed__isnull=True).first()
    if device is None:
        raise CredentialError("start the set-up again")
    now = timezone.now()
    step = totp.matching_step(device.secret, code, now, after=0)
    if step is None:
        raise CredentialError("that code is not right; check the time on your phone and try the next code")
    TotpDevice.objects.filter(pk=device.pk).update(confirmed=now, last_step=step)
    return new_recovery_codes(account)


@transaction.atomic
def disable_totp(account: Account) -> None:
    """Turn two-factor sign-in off (the owner, or an admin resetting a lost phone)."""
    TotpDevice.objects.filter(account=account).delete()
    RecoveryCode.objects.filter(account=account).delete()


@transaction.atomic
def accept_second_factor(account_id: int, typed: str) -> str | None:
    """How the second factor was given ("TOTP", "recovery code") if `typed` is a code not used before.

    Both checks are conditional updates, so two sign-ins racing with the same code in two processes cannot
    both succeed: a TOTP step is accepted only above the last one accepted (RFC 6238 5.2), a recovery code only
    while unused.
    """
    if totp.looks_like_code(typed):
        device = TotpDevice.objects.filter(account_id=account_id, confirmed__isnull=False).first()
        if device is None:
            return None
        step = totp.matching_step(device.secret, typed, timezone.now(), after=device.last_step)
        if step is None:
            return None
        won = TotpDevice.objects.filter(pk=device.pk, last_step__lt=step).update(last_step=step)
        return "TOTP" if won else None
    if not tokens.looks_generated(typed, tokens.RECOVERY_CODE_LENGTH):
        return None
    used = RecoveryCode.objects.filter(account_id=account_id, digest=tokens.digest(typed), used__isnull=True)
    return "recovery code" if used.update(used=timezone.now()) else None


# --- Web sessions ---------------------------------------------------------------------------------------------


def remember_web_session(account_id: int, session_key: str, remote_ip: str | None, user_agent: str) -> None:
    WebSession.objects.update_or_create(
        session_key=session_key,
        defaults={"account_id": account_id, "remote_ip": remote_ip, "user_agent": user_agent[:200]},
    )


def web_sessions(account: Account) -> list[WebSession]:
    """The account's sessions still alive (signed out or expired ones are forgotten here)."""
    alive = Session.objects.filter(expire_date__gt=timezone.now()).values("session_key")
    WebSession.objects.filter(account=account).exclude(session_key__in=alive).delete()
    return list(WebSession.objects.filter(account=account).order_by("-created"))


@transaction.atomic
def end_web_session(account: Account, web_session_id: int) -> bool:
    """Sign one of the account's sessions out (from another device); False if it is not the account's."""
    row = WebSession.objects.filter(account=account, pk=web_session_id).first()
    if row is None:
        return False
    Session.objects.filter(session_key=row.session_key).delete()
    row.delete()
    return True
