"""What a sign-in checks besides the main password: app passwords for mail protocols, and the account's policy.

It follows the sign-in's three steps (`mailboxes.actions.auth`): `for_sign_in` gives the statement reading what
the account may sign in with (the sign-in sends it with its other reads), `match_app_password` compares the typed
secret with no database work, and `record` marks the app password used and lists the sign-in in the write step.
None of them sleeps or raises for a wrong secret: the caller keeps replies and timing the same for every failure.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.utils import timezone

from credentials import actions, tokens
from credentials.models import MAIL_PROTOCOLS, AppPassword, SecurityOptions
from mailboxes.models import Account


@dataclass(frozen=True)
class SignInOptions:
    main_password_allowed: bool = True
    app_passwords: tuple[tuple[str, int], ...] = ()  # (digest, id) of those allowed for the protocol


MAIN_PASSWORD_ONLY = SignInOptions()  # the webmail's and admin's, and any unknown account's


def for_sign_in(address: str, protocol: str) -> tuple[str, list] | None:
    """Read step: the statement reading what the account at `address` may sign in with over `protocol`, for
    `options` to make sense of its rows; None when there is nothing to read. The webmail and admin ("web") take
    only the main password; mail protocols take the app passwords limited to them, and the main password unless
    the account requires app passwords."""
    if protocol not in MAIL_PROTOCOLS:
        return None
    return _OPTIONS_SQL, [address, True, address]


def options(rows: list[tuple] | None, protocol: str) -> SignInOptions:
    """The rows of `for_sign_in`'s statement (None without one) as the options."""
    if rows is None:
        return MAIN_PASSWORD_ONLY
    required = bool(rows[0][0])
    allowed = tuple(
        (digest, pk) for _, digest, pk, protocols in rows if pk is not None and protocol in protocols.split(",")
    )
    return SignInOptions(main_password_allowed=not required, app_passwords=allowed)


# Both in one fixed statement, run at every mail sign-in: whether the account requires app passwords (on each
# row), and its app passwords (none: one row of NULLs). By address, so that it goes with the account's own read.
_ACCOUNT_ID = f"(SELECT id FROM {Account._meta.db_table} WHERE address = %s)"
_OPTIONS_SQL = (
    f"SELECT EXISTS (SELECT 1 FROM {SecurityOptions._meta.db_table} WHERE account_id = {_ACCOUNT_ID} "
    "AND require_app_passwords = %s), app.digest, app.id, app.protocols "
    f"FROM (SELECT 1) AS one LEFT JOIN {AppPassword._meta.db_table} AS app ON app.account_id = {_ACCOUNT_ID}"
)


def match_app_password(options: SignInOptions, secret: str) -> int | None:
    """CPU step: the id of the app password `secret` is, among those allowed."""
    if not options.app_passwords or not tokens.looks_generated(secret, tokens.APP_PASSWORD_LENGTH):
        return None
    typed = tokens.digest(secret)
    found = None
    for digest, pk in options.app_passwords:
        if hmac.compare_digest(digest, typed):
            found = pk
    return found


def record(account_id: int, app_password_id: int | None, *, protocol: str, remote_ip: str | None) -> None:
    """Write step of a success: the app password is stamped used, and a mail client's sign-in is listed for
    the owner (the webmail lists its own once the second factor, if any, is given)."""
    method = "password"
    if app_password_id is not None:
        AppPassword.objects.filter(pk=app_password_id).update(last_used=timezone.now(), last_used_ip=remote_ip)
        name = AppPassword.objects.filter(pk=app_password_id).values_list("name", flat=True).first()
        method = f"app password {name}"
    if protocol != "web":
        actions.record_sign_in(account_id, protocol, remote_ip, method)
