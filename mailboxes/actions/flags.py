"""Message flags: IMAP system flags as columns, keywords as a space-delimited column."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from mailboxes import uid_ranges
from mailboxes.actions import counters, flights
from mailboxes.actions.locks import action, lock
from mailboxes.models import Account, Mailbox, Message

SYSTEM_FLAGS = {
    "\\seen": "seen",
    "\\answered": "answered",
    "\\flagged": "flagged",
    "\\deleted": "deleted",
    "\\draft": "draft",
}


def flag_names(message: Message) -> list[str]:
    """IMAP flags of a message: system flags in their canonical spelling, then keywords."""
    names = [f"\\{column.capitalize()}" for column in SYSTEM_FLAGS.values() if getattr(message, column)]
    return names + message.keyword_list


def split_flags(flags: Iterable[str]) -> tuple[dict[str, bool], list[str]]:
    system: dict[str, bool] = {}
    keywords: list[str] = []
    for flag in flags:
        column = SYSTEM_FLAGS.get(flag.lower())
        if column:
            system[column] = True
        elif flag.startswith("\\"):
            continue  # \Recent and unknown system flags are not stored (RFC 3501 2.3.2)
        elif flag not in keywords:
            keywords.append(flag)
    return system, keywords


def set_row_flags(row: Message, flags: Iterable[str]) -> None:
    """Give a message row not yet stored these IMAP flags (system flags and keywords)."""
    system, keywords = split_flags(flags)
    for column, value in system.items():
        setattr(row, column, value)
    row.keywords = f" {' '.join(keywords)} " if keywords else ""


class FlagMode(enum.StrEnum):
    REPLACE = "replace"  # STORE FLAGS
    ADD = "add"  # STORE +FLAGS
    REMOVE = "remove"  # STORE -FLAGS


@action
def set_flags(
    account: Account,
    mailbox_id: int,
    uids: Sequence[int],
    flags: Iterable[str],
    mode: FlagMode,
    *,
    unchanged_since: int | None = None,
) -> list[Message]:
    """Change flags of the messages with these UIDs; returns the changed messages with their new flags.

    With `unchanged_since`, messages whose mod-sequence is above it are left alone (IMAP's conditional
    STORE, RFC 7162 3.1.3), decided under the folder's lock."""
    lock(folders=[mailbox_id], owner=account.pk)
    chosen = Message.objects.filter(mailbox_id=mailbox_id, uid__among=uids)
    if unchanged_since is not None:
        chosen = chosen.filter(modseq__lte=unchanged_since)
    return _change(mailbox_id, _read(chosen), flags, mode)


def store_flags(
    account: Account,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]],
    max_uid: int,
    flags: Iterable[str],
    mode: FlagMode,
) -> tuple[list[Message], list[Message]]:
    """`set_flags` for the folder's messages with UIDs in these ranges, up to `max_uid` (IMAP's STORE of a UID
    set): every one of them with its flags and mod-sequence after the change, by UID, read under the folder's
    lock as they are changed (so a STORE needs no read before it or after it); and those changed.

    On PostgreSQL outside a transaction, one transaction in flights (`flights`): for system flags alone, one
    flight whose statement changes the flags and the folder's counts itself, so the folder's lock is held only
    while PostgreSQL runs it; with keywords, two flights, the lock held across one trip to the listener."""
    if not flights.usable():
        return _store_flags(account, mailbox_id, ranges, max_uid, flags, mode)
    system, keywords = split_flags(flags)
    if not keywords:
        return _store_system_flags(account.pk, mailbox_id, ranges, max_uid, system, mode)
    with flights.transaction() as flight:
        flight.lock_folder(mailbox_id, account.pk)
        read = flight.send(*_read_ranges_statement(account.pk, mailbox_id, ranges, max_uid))
        flight.require_folder()
        messages = _rows(read.fetchall())
        changed, counted = _changes(messages, flags, mode)
        written = None
        if changed:
            written = flight.send(*counters.bump_and_update_statement(mailbox_id, counted, changed, _WRITTEN))
        flight.commit()
    if written is not None:
        [(modseq,)] = written.fetchall()
        for message in changed:
            message.modseq = modseq
    return messages, changed


@action
def _store_flags(
    account: Account,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]],
    max_uid: int,
    flags: Iterable[str],
    mode: FlagMode,
) -> tuple[list[Message], list[Message]]:
    lock(folders=[mailbox_id], owner=account.pk)
    messages = _read_ranges(account.pk, mailbox_id, ranges, max_uid)
    return messages, _change(mailbox_id, messages, flags, mode)


_READ_FIELDS = ("id", "uid", "modseq", "size", "keywords", *SYSTEM_FLAGS.values())
# The same columns as a fixed statement, in the model's order (as `Model.from_db` takes them): a STORE reads its
# set under the folder's lock, and compiling a queryset there cost more than the read.
_READ_COLUMNS = [field.attname for field in Message._meta.concrete_fields if field.attname in _READ_FIELDS]
_READ_RANGES_SQL = (
    f"SELECT {', '.join(f'm.{column}' for column in _READ_COLUMNS)} FROM {{messages}} "
    "WHERE m.account_id = %s AND m.uid <= %s ORDER BY m.uid"
)


_COLUMNS = list(SYSTEM_FLAGS.values())
_WRITTEN = ["keywords", *_COLUMNS]  # what a change of flags writes
# STORE of system flags as one statement, after the folder's lock in the same transaction (so its snapshot has
# every change committed before that lock): each flag is set to a parameter or kept (a CASE with two parameters),
# and the keywords cleared or kept (STORE FLAGS without keywords clears them). Only the messages it changes get
# the folder's next mod-sequence, with the counts' change (unseen, deleted and their size) in the same UPDATE of
# the folder's row, made only if some message changed (RFC 7162 3.1: a mod-sequence names a change). It returns
# every message of the set with its flags after the change, and whether it changed, by UID.
_STORE_SYSTEM_SQL = f"""
    WITH step AS (
        SELECT m.id, m.uid, m.modseq, m.size, m.keywords AS was_keywords,
            {", ".join(f"m.{column} AS was_{column}" for column in _COLUMNS)},
            {", ".join(f"CASE WHEN %s THEN %s ELSE m.{column} END AS {column}" for column in _COLUMNS)},
            CASE WHEN %s THEN '' ELSE m.keywords END AS keywords
        FROM {uid_ranges.source("m", "postgresql")}
        WHERE m.account_id = %s AND m.uid <= %s
    ),
    changed AS (
        SELECT * FROM step
        WHERE ({", ".join(_COLUMNS)}, keywords)
            IS DISTINCT FROM ({", ".join(f"was_{c}" for c in _COLUMNS)}, was_keywords)
    ),
    folder AS (
        UPDATE {Mailbox._meta.db_table} SET highestmodseq = highestmodseq + 1,
            unseen_count = unseen_count + d.unseen_change, deleted_count = deleted_count + d.deleted_change,
            deleted_size = deleted_size + d.deleted_size_change
        FROM (
            SELECT sum((NOT seen)::int - (NOT was_seen)::int) AS unseen_change,
                sum(deleted::int - was_deleted::int) AS deleted_change,
                sum((deleted::int - was_deleted::int) * size) AS deleted_size_change
            FROM changed HAVING count(*) > 0
        ) AS d
        WHERE id = %s
        RETURNING highestmodseq
    ),
    written AS (
        UPDATE {Message._meta.db_table} m
        SET {", ".join(f"{column} = c.{column}" for column in _COLUMNS)}, keywords = c.keywords,
            modseq = folder.highestmodseq
        -- By the primary key: as a join, the set's estimated size (the ranges are parameters) made the planner
        -- read the whole table.
        FROM changed c, folder WHERE m.id = ANY(ARRAY(SELECT id FROM changed)) AND m.id = c.id
    )
    SELECT {", ".join("COALESCE(f.highestmodseq, s.modseq)" if c == "modseq" else f"s.{c}" for c in _READ_COLUMNS)},
        c.id IS NOT NULL
    FROM step s LEFT JOIN changed c ON c.id = s.id LEFT JOIN folder f ON c.id IS NOT NULL
    ORDER BY s.uid
"""


def _store_system_flags(
    account_id: int,
    mailbox_id: int,
    ranges: Sequence[tuple[int, int]],
    max_uid: int,
    system: dict[str, bool],
    mode: FlagMode,
) -> tuple[list[Message], list[Message]]:
    """`store_flags` of system flags alone in one flight: BEGIN, the folder's lock, `_STORE_SYSTEM_SQL` and
    COMMIT, sent together."""
    if mode is FlagMode.REPLACE:
        cases = [(True, column in system) for column in _COLUMNS]
    else:
        cases = [(column in system, mode is FlagMode.ADD) for column in _COLUMNS]
    params: list[Any] = [value for case in cases for value in case]
    params += [mode is FlagMode.REPLACE, *uid_ranges.parameters(ranges, mailbox_id)]
    params += [account_id, max_uid, mailbox_id]
    with flights.transaction() as flight:
        flight.lock_folder(mailbox_id, account_id)
        stored = flight.send(_STORE_SYSTEM_SQL, params)
        flight.commit()
    flight.require_folder()
    messages, changed = [], []
    for *values, was_changed in stored.fetchall():
        message = Message.from_db(connection.alias, _READ_COLUMNS, values)
        messages.append(message)
        if was_changed:
            changed.append(message)
    return messages, changed


def _read(chosen: QuerySet[Message]) -> list[Message]:
    return list(chosen.only(*_READ_FIELDS).order_by("uid"))


def _read_ranges(account_id: int, mailbox_id: int, ranges: Sequence[tuple[int, int]], max_uid: int) -> list[Message]:
    """`_read` of the account's folder's messages in these UID ranges (they may overlap), up to `max_uid`."""
    with connection.cursor() as cursor:
        cursor.execute(*_read_ranges_statement(account_id, mailbox_id, ranges, max_uid))
        return _rows(cursor.fetchall())


def _read_ranges_statement(
    account_id: int, mailbox_id: int, ranges: Sequence[tuple[int, int]], max_uid: int
) -> tuple[str, list]:
    sql = _READ_RANGES_SQL.format(messages=uid_ranges.source("m"))
    return sql, [*uid_ranges.parameters(ranges, mailbox_id), account_id, max_uid]


def _rows(rows: Iterable[tuple]) -> list[Message]:
    return [Message.from_db(connection.alias, _READ_COLUMNS, row) for row in rows]


def _change(mailbox_id: int, messages: list[Message], flags: Iterable[str], mode: FlagMode) -> list[Message]:
    """Set the flags of these messages of the locked folder; returns those changed."""
    changed, counted = _changes(messages, flags, mode)
    if changed:
        # Raised only by a change (RFC 7162 3.1: a mod-sequence names a change), with the counts in the same UPDATE.
        counters.bump_and_update(mailbox_id, counted, changed, _WRITTEN)
    return changed


def _changes(messages: list[Message], flags: Iterable[str], mode: FlagMode) -> tuple[list[Message], counters.Tally]:
    """Give these messages their new flags; returns those changed and what that does to the folder's counts."""
    system, keywords = split_flags(flags)
    changed = []
    counted = counters.NONE  # what the changes do to the folder's counts
    for message in messages:
        before = (tuple(getattr(message, c) for c in SYSTEM_FLAGS.values()), message.keywords)
        share = counters.Tally.of(message.size, message.seen, message.deleted)
        current = message.keyword_list
        if mode is FlagMode.REPLACE:
            for column in SYSTEM_FLAGS.values():
                setattr(message, column, system.get(column, False))
            current = keywords
        else:
            for column in system:
                setattr(message, column, mode is FlagMode.ADD)
            if mode is FlagMode.ADD:
                current = current + [k for k in keywords if k not in current]
            else:
                current = [k for k in current if k not in keywords]
        message.keywords = f" {' '.join(current)} " if current else ""
        if (tuple(getattr(message, c) for c in SYSTEM_FLAGS.values()), message.keywords) != before:
            counted += counters.Tally.of(message.size, message.seen, message.deleted) - share
            changed.append(message)
    return changed, counted
