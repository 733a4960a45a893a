"""Storing an account's Sieve scripts: the operations ManageSieve (RFC 5804), the webmail and the admin use.

Every script is validated before it is stored, so a stored script always compiles (a script that stops
compiling after an upgrade is still never lost: delivery logs it and keeps the message). Each operation is one
transaction on the `sieve` tables; the database's constraints (one name per account, one active script per
account) hold under concurrent sessions.
"""

from __future__ import annotations

import unicodedata

from django.db import IntegrityError, transaction
from django.utils import timezone

from mailboxes.models import Account
from sieve.errors import SieveError
from sieve.models import SieveScript
from sieve.parser import MAX_SCRIPT_BYTES
from sieve.validate import Script, compile_script

MAX_SCRIPTS = 32
MAX_NAME_LENGTH = 255


class ScriptError(Exception):
    """A refused operation; `code` is the RFC 5804 response code (NONEXISTENT, ALREADYEXISTS, ACTIVE,
    QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE, TRYLATER) or "" for an invalid script or name."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def check_name(name: str) -> None:
    """RFC 5804 1.6: a script name is UTF-8 with no control characters, no line or paragraph separators."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ScriptError(f"a script name has 1 to {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in name):
        raise ScriptError("a script name cannot contain control characters")


def check(content: str) -> Script:
    """The compiled script, or ScriptError with the line and column of the first problem."""
    try:
        return compile_script(content)
    except SieveError as exc:
        raise ScriptError(str(exc)) from None


def have_space(account: Account, name: str, size: int) -> None:
    """RFC 5804 2.5 HAVESPACE: ScriptError with a QUOTA code if a script of `size` octets would not fit."""
    if size > MAX_SCRIPT_BYTES:
        raise ScriptError(f"scripts are limited to {MAX_SCRIPT_BYTES} octets", "QUOTA/MAXSIZE")
    others = SieveScript.objects.filter(account=account).exclude(name=name).count()
    if others >= MAX_SCRIPTS:
        raise ScriptError(f"at most {MAX_SCRIPTS} scripts per account", "QUOTA/MAXSCRIPTS")


def list_scripts(account: Account) -> list[tuple[str, bool]]:
    return list(SieveScript.objects.filter(account=account).order_by("name").values_list("name", "active"))


def get_script(account: Account, name: str) -> str:
    content = SieveScript.objects.filter(account=account, name=name).values_list("content", flat=True).first()
    if content is None:
        raise ScriptError("there is no script of that name", "NONEXISTENT")
    return content


def active_script(account: Account) -> SieveScript | None:
    return SieveScript.objects.filter(account=account, active=True).first()


@transaction.atomic
def put_script(account: Account, name: str, content: str, *, activate: bool = False) -> None:
    """Store (create or replace) a script after validating it; `activate` also makes it the active one."""
    check_name(name)
    have_space(account, name, len(content.encode("utf-8")))
    check(content)
    updated = SieveScript.objects.filter(account=account, name=name).update(content=content, updated=timezone.now())
    if not updated:
        try:
            with transaction.atomic():
                SieveScript.objects.create(account=account, name=name, content=content)
        except IntegrityError:
            raise ScriptError("another session is writing this script; try again", "TRYLATER") from None
    if activate:
        set_active(account, name)


@transaction.atomic
def set_active(account: Account, name: str) -> None:
    """Make `name` the active script; "" deactivates all (RFC 5804 2.8)."""
    if name and not SieveScript.objects.filter(account=account, name=name).exists():
        raise ScriptError("there is no script of that name", "NONEXISTENT")
    SieveScript.objects.filter(account=account, active=True).exclude(name=name).update(active=False)
    if name:
        try:
            with transaction.atomic():
                SieveScript.objects.filter(account=account, name=name).update(active=True, updated=timezone.now())
        except IntegrityError:
            raise ScriptError("another session is changing the active script; try again", "TRYLATER") from None


@transaction.atomic
def delete_script(account: Account, name: str) -> None:
    script = SieveScript.objects.filter(account=account, name=name).first()
    if script is None:
        raise ScriptError("there is no script of that name", "NONEXISTENT")
    if script.active:
        # RFC 5804 2.10: the active script cannot be deleted.
        raise ScriptError("the active script cannot be deleted; deactivate it first", "ACTIVE")
    script.delete()


@transaction.atomic
def rename_script(account: Account, old: str, new: str) -> None:
    check_name(new)
    if not SieveScript.objects.filter(account=account, name=old).exists():
        raise ScriptError("there is no script of that name", "NONEXISTENT")
    if SieveScript.objects.filter(account=account, name=new).exists():
        raise ScriptError("a script of the new name exists already", "ALREADYEXISTS")
    try:
        with transaction.atomic():
            SieveScript.objects.filter(account=account, name=old).update(name=new, updated=timezone.now())
    except IntegrityError:
        raise ScriptError("a script of the new name exists already", "ALREADYEXISTS") from None


def disable(script_ids: list[int]) -> int:
    """Admin: deactivate these scripts (they are kept); returns how many were active."""
    return SieveScript.objects.filter(pk__in=script_ids, active=True).update(active=False, updated=timezone.now())
