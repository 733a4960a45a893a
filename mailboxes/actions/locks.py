"""The one place that takes row locks, and the `action` decorator every writer of the store wears.

Global lock order: folder rows (ascending id), then account rows (ascending id), then outbound queue rows
(ascending id). An action names every folder and account it will touch and calls `lock()` once, before it
writes; two actions that run at once then always wait for each other in the same order and can never
deadlock. Nested actions (a delivery inside a send) share the outer action's locks: asking again for a row
already held is free, and asking for a row that sorts before one already held raises `LockOrderError`, a
programming error that the tests catch, instead of a deadlock in production.

Rows are locked with `FOR NO KEY UPDATE`, the lock an UPDATE of non-key columns takes anyway, so inserts
that reference them (a new message's foreign keys) are not blocked. SQLite has one writer at a time and no
row locks: there the order is only checked.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from django.db import connection, transaction
from django.db.models import Model, QuerySet

from mailboxes.actions.errors import NotFound
from mailboxes.models import Account, Mailbox, Role

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=Model)

FOLDER, ACCOUNT, OUTBOUND = 0, 1, 2  # kinds, in lock order


class LockOrderError(RuntimeError):
    """An action asked for a row lock after one that sorts later: fix the action to name it up front."""


@dataclass
class _Held:
    keys: set[tuple[int, int]] = field(default_factory=set)
    highest: tuple[int, int] = (-1, -1)
    inboxes: dict[int, int] = field(default_factory=dict)  # account id -> its Inbox, for Inboxes held


_held: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("mailsite_locks", default=None)


def action(func: Callable[P, R] | None = None, *, savepoint: bool = True) -> Callable[..., R]:
    """Make `func` one transaction of the store (nested inside an enclosing action's transaction)."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if _held.get() is not None:
                with transaction.atomic(savepoint=savepoint):
                    return func(*args, **kwargs)
            token = _held.set(_Held())
            try:
                with transaction.atomic():
                    return func(*args, **kwargs)
            finally:
                _held.reset(token)

        return run

    return decorate(func) if func is not None else decorate  # type: ignore[return-value]


def _check(kind: int, ids: Iterable[int]) -> list[int]:
    """The ids not yet held, in ascending order; raises if one sorts before a lock already held."""
    held = _held.get()
    if held is None:
        raise LockOrderError("row locks are taken only inside an action")
    wanted = sorted({pk for pk in ids if (kind, pk) not in held.keys})
    if wanted and (kind, wanted[0]) < held.highest:
        raise LockOrderError(f"lock of kind {kind} id {wanted[0]} requested after {held.highest}")
    return wanted


def _remember(kind: int, ids: Iterable[int]) -> None:
    held = _held.get()
    assert held is not None
    for pk in ids:
        held.keys.add((kind, pk))
        held.highest = max(held.highest, (kind, pk))


def _lock_clause() -> str:
    # LockRows runs above the sort, so the rows are locked in id order.
    return " ORDER BY id FOR NO KEY UPDATE" if connection.vendor == "postgresql" else " ORDER BY id"


def _in(column: str, values: list[int]) -> tuple[str, list]:
    """`column` is one of `values`: one array parameter on PostgreSQL (one prepared statement for any count)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [values]
    return f"{column} IN ({', '.join(['%s'] * len(values)) or 'NULL'})", list(values)


@dataclass(frozen=True)
class Locked:
    inboxes: dict[int, int]  # account id -> Inbox id, for the accounts whose Inbox was asked for


def lock(
    *,
    folders: Iterable[int] = (),
    inboxes_of: Iterable[int] = (),
    accounts: Iterable[int] = (),
    owner: int | None = None,
) -> Locked:
    """Lock these folders, the Inboxes of these accounts, then these accounts, in the global order. With `owner`,
    `folders` must all be that account's, else NotFound (checked by the statement that locks them).

    At most two statements: one for all folders (Inboxes included), one for all accounts.
    """
    folder_ids = set(folders)
    inbox_accounts = sorted(set(inboxes_of))
    account_ids = _check(ACCOUNT, accounts)
    inboxes: dict[int, int] = {}
    held = _held.get()
    if held is not None and inbox_accounts and held.highest > (ACCOUNT, -1):
        # An Inbox not yet held would be a folder after an account; only Inboxes already held may be asked for.
        if any(account_id not in held.inboxes for account_id in inbox_accounts):
            raise LockOrderError("an Inbox requested after account locks")
        inboxes, inbox_accounts = {pk: held.inboxes[pk] for pk in inbox_accounts}, []
    if folder_ids or inbox_accounts:
        wanted = _check(FOLDER, folder_ids)
        if owner is not None and len(wanted) < len(folder_ids):  # some held already: not checked below
            held_ids = folder_ids.difference(wanted)
            if Mailbox.objects.filter(account_id=owner, pk__in=held_ids).count() != len(held_ids):
                raise NotFound("no such folder")
        if wanted or inbox_accounts:
            by_id, id_params = _in("id", wanted)
            owned, owner_params = ("", []) if owner is None else (" AND account_id = %s", [owner])
            by_account, account_params = _in("account_id", inbox_accounts)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, account_id, role FROM {Mailbox._meta.db_table} "
                    f"WHERE ({by_id}{owned}) OR ({by_account} AND role = %s){_lock_clause()}",
                    [*id_params, *owner_params, *account_params, Role.INBOX.value],
                )
                rows = cursor.fetchall()
            got = [pk for pk, _, _ in rows]
            if owner is not None and not set(wanted).issubset(got):
                raise NotFound("no such folder")
            _check(FOLDER, got)
            _remember(FOLDER, got)
            inboxes.update({account_id: pk for pk, account_id, role in rows if role == Role.INBOX.value})
            assert held is not None
            held.inboxes.update(inboxes)
    if account_ids:
        by_id, id_params = _in("id", account_ids)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {Account._meta.db_table} WHERE {by_id}{_lock_clause()}", id_params)
            cursor.fetchall()
        _remember(ACCOUNT, account_ids)
    return Locked(inboxes)


def owned_folder_locks(folder: int, owner: int, *, account: bool = False) -> list[tuple[str, list]]:
    """The statements that lock one folder of `owner`'s and, with `account`, then that account (the global
    order), for a transaction that sends them along with others and takes no lock through `lock()` (`flights`).
    The first returns the folder's row, none if it is not theirs: NotFound is then the caller's to raise."""
    statements = [
        (f"SELECT id FROM {Mailbox._meta.db_table} WHERE id = %s AND account_id = %s{_lock_clause()}", [folder, owner])
    ]
    if account:
        statements.append((f"SELECT id FROM {Account._meta.db_table} WHERE id = %s{_lock_clause()}", [owner]))
    return statements


def holding() -> bool:
    """Whether this action holds row locks already (so any more must sort after them)."""
    held = _held.get()
    return held is not None and bool(held.keys)


def taken(*, folder: int, account: int | None = None) -> None:
    """Record the locks an action's own UPDATEs just took, one folder and then one account (or the folder alone):
    with a single row of each kind, taking them in that order needs no statement of its own. Refused like
    `lock()` when they sort before a lock already held."""
    _remember(FOLDER, _check(FOLDER, [folder]))
    if account is not None:
        _remember(ACCOUNT, _check(ACCOUNT, [account]))


def lock_outbound(rows: QuerySet[M], *, skip_locked: bool = False) -> list[M]:
    """Lock the outbound queue rows of `rows` and return them (ascending id). `skip_locked`: leave out rows
    another transaction holds, for claiming work (a queue, not a wait)."""
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(skip_locked=skip_locked)
    locked = list(rows.order_by("id"))
    _check(OUTBOUND, [row.pk for row in locked])
    _remember(OUTBOUND, [row.pk for row in locked])
    return locked
