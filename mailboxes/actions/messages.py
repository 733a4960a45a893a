"""Adding and removing messages in folders: APPEND, COPY, MOVE, EXPUNGE and deletion."""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db import connection, models
from django.db.models import Q
from django.db.models.deletion import Collector, get_candidate_relations_to_delete
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.utils import timezone

from mailauth import training
from mailboxes import bulk
from mailboxes.actions import counters, direct, flights, recycling, storing
from mailboxes.actions.errors import OverQuota
from mailboxes.actions.flags import SYSTEM_FLAGS
from mailboxes.actions.locks import action, lock, taken
from mailboxes.models import Account, ExpungedMessage, Mailbox, Message, RecycledMessage
from mailcore.mime import parse_message

# Messages deleted per statement where Django's Collector deletes them (see `_deletion_steps`): it deletes what
# refers to them (scheduled sends, import records) by id lists of a parameter each, and a statement takes at most
# 65,535 parameters on PostgreSQL.
DELETE_BATCH = 10_000


def append(
    account: Account,
    mailbox_id: int,
    raw: bytes,
    *,
    flags: Iterable[str] = (),
    internal_date: datetime.datetime | None = None,
) -> Message:
    """Store a message the user supplies (IMAP APPEND, webmail Sent copy and drafts).

    The parse, the conversation and the row's columns are worked out before any lock: concurrent APPENDs, STOREs
    and EXPUNGEs of the folder wait only for the writes. Outside a transaction on PostgreSQL those are one
    statement (`direct.store`); otherwise, or when that statement cannot decide (a full mailbox, a folder that
    is not the account's), this action's transaction: UIDs, counts and quota in one statement, then one INSERT of
    body and row."""
    message = storing.new_row(
        parse_message(raw), raw, account_id=account.pk, mailbox_id=mailbox_id, flags=flags, internal_date=internal_date
    )
    if flights.usable() and direct.store(message, folder=mailbox_id):
        return message
    return _append(account, message)


@action
def _append(account: Account, message: Message) -> Message:
    # The reservation locks the folder (if it is the account's) and then the account, the store's order: recorded
    # first, so an enclosing action holding a lock that sorts after the folder is refused before either is taken.
    taken(folder=message.mailbox_id, account=account.pk)
    size = message.size
    added = counters.Tally.of(size, message.seen, message.deleted)
    _, message.uid, message.modseq, [fits] = counters.reserve(account.pk, [size], message.mailbox_id, added)
    if not fits:
        raise OverQuota("the mailbox is full")
    assert message.body is not None
    bulk.insert_linked([message.body], [message], "body")
    return message


@action
def copy(account: Account, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]:
    """Copy messages (sharing their bodies) into another folder; returns (source uid, new uid) pairs.

    INTERNALDATE and flags are kept (RFC 3501 6.4.7). Counts against the quota. The rows are copied by the
    database in one INSERT ... SELECT, whatever their number: nothing of them travels through Python.
    """
    folders = {mailbox_id, target_id}
    lock(folders=folders, accounts=[account.pk], owner=account.pk)
    for pk in sorted(folders):
        counters.bump_modseq(pk)
    chosen, params = _chosen(sorted(set(uids)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.id, m.uid, m.size, m.seen, m.deleted FROM {Message._meta.db_table} m{chosen} "
            "WHERE m.mailbox_id = %s "
            "ORDER BY m.uid",
            [*params, mailbox_id],
        )
        found = cursor.fetchall()
    if not found:
        return []
    if not counters.charge_quota(account.pk, sum(size for _, _, size, _, _ in found), len(found)):
        raise OverQuota("the mailbox is full")
    training.on_transfer(mailbox_id, target_id, [row[0] for row in found])  # into or out of Junk: junk training
    added = counters.tally(row[2:] for row in found)
    first_uid, modseq = counters.allocate_uids(target_id, len(found), added)
    source_uids = [row[1] for row in found]
    copied = _copy_rows(mailbox_id, source_uids, target_id, first_uid, modseq)
    assert copied == len(found), "the source folder is locked: its messages cannot change meanwhile"
    return list(zip(source_uids, range(first_uid, first_uid + len(found)), strict=True))


def _chosen(uids: list[int]) -> tuple[str, list]:
    """A join keeping the messages with these UIDs (ascending), each numbered by its place among them (n, from 1).

    On PostgreSQL the UIDs are one array joined as a set: `uid = ANY(array)` would compare each row with every
    element (10,000 messages: 10^8 comparisons, a third of a second)."""
    if connection.vendor == "postgresql":
        return " JOIN unnest(%s::bigint[]) WITH ORDINALITY AS chosen (uid, n) ON chosen.uid = m.uid", [uids]
    return " JOIN (SELECT value AS uid, key + 1 AS n FROM json_each(%s)) AS chosen ON chosen.uid = m.uid", [
        json.dumps(uids)
    ]


def _copy_rows(mailbox_id: int, uids: list[int], target_id: int, first_uid: int, modseq: int) -> int:
    """Insert copies of these messages (ascending UIDs, all present) into the target folder, numbered from
    `first_uid` in the same order, in one statement; returns how many rows it inserted."""
    table = Message._meta.db_table
    quote = connection.ops.quote_name
    changed = {"mailbox_id": ("%s", [target_id]), "uid": ("%s + chosen.n - 1", [first_uid]), "modseq": ("%s", [modseq])}
    columns, values, params = [], [], []
    for field in Message._meta.concrete_fields:
        if field.primary_key or field.generated:
            continue
        value, value_params = changed.get(field.column, (f"m.{quote(field.column)}", []))
        columns.append(quote(field.column))
        values.append(value)
        params.extend(value_params)
    if connection.vendor == "postgresql":  # the search document, not a model field (mailboxes.search_document)
        columns.append("search_document")
        values.append("m.search_document")
    chosen, chosen_params = _chosen(uids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {table} m{chosen} "
            "WHERE m.mailbox_id = %s",
            [*params, *chosen_params, mailbox_id],
        )
        return cursor.rowcount


@action
def move(account: Account, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]:
    """Move messages to another folder (RFC 6851); returns (source uid, new uid) pairs.

    The rows keep their identity, flags and INTERNALDATE and get new UIDs in the target folder.
    """
    # RFC 6851 allows a folder as its own target: the messages get new UIDs there (clients use it to renumber).
    lock(folders={mailbox_id, target_id}, owner=account.pk)
    chosen = Message.objects.filter(mailbox_id=mailbox_id, uid__among=uids)
    messages = list(chosen.only("id", "uid", "size", "seen", "deleted").order_by("uid"))
    if not messages:
        return []
    # Into the same folder the counts stay as they are; the source's mod-sequence rises with the target's.
    moved = counters.tally((m.size, m.seen, m.deleted) for m in messages) if target_id != mailbox_id else counters.NONE
    source_modseq = counters.bump_modseq(mailbox_id, counters.NONE - moved) if target_id != mailbox_id else None
    first_uid, modseq = counters.allocate_uids(target_id, len(messages), moved)
    mapping = []
    for offset, message in enumerate(messages):
        mapping.append((message.uid, first_uid + offset))
        message.mailbox_id = target_id
        message.uid = first_uid + offset
        message.modseq = modseq
    bulk.update(messages, ["mailbox", "uid", "modseq"])
    training.on_transfer(mailbox_id, target_id, [m.pk for m in messages])  # into or out of Junk: junk training
    log_expunged(mailbox_id, [uid for uid, _ in mapping], modseq if source_modseq is None else source_modseq)
    return mapping


def remove(account_id: int, mailbox_id: int, messages: Q) -> list[int]:
    """Delete these messages of one folder into the recycle bin, take them off the folder's counts (raising its
    mod-sequence) and off the account's quota, and drop bodies nothing refers to any more; returns their UIDs.

    For actions that hold the locks of the folder and of the account.
    """
    chosen = Message.objects.filter(messages, mailbox_id=mailbox_id).order_by()  # no join for the model's order
    rows = list(chosen.select_related("mailbox").only(*recycling.REMOVED_COLUMNS))
    if not rows:
        return []
    removed = counters.tally((r.size, r.seen, r.deleted) for r in rows)
    steps = _deletion_steps()
    if steps is not None:
        _remove_at_once(account_id, mailbox_id, rows, removed, steps)
        return sorted(row.uid for row in rows)
    modseq = counters.release(mailbox_id, removed, account_id)
    log_expunged(mailbox_id, [row.uid for row in rows], modseq)
    kept = recycling.keep(rows)
    for start in range(0, len(rows), DELETE_BATCH):
        _delete(rows[start : start + DELETE_BATCH])
    if not kept:  # kept, each body has a recycled message now
        recycling.drop_bodies(row.body_id for row in rows)
    return sorted(row.uid for row in rows)


def _delete(rows: list[Message]) -> None:
    """Delete these messages and do what their relations ask (on_delete) to what refers to them, as Django's
    Collector does, but for the rows read above: a queryset's delete() would read every column of them again
    first (what refers to them is found by their ids all the same)."""
    collector = Collector(using=connection.alias)
    collector.collect(rows)
    collector.delete()


def _remove_at_once(
    account_id: int, mailbox_id: int, rows: list[Message], removed: counters.Tally, steps: list[str]
) -> None:
    """`remove`'s writes in one statement on PostgreSQL: the folder's counts and mod-sequence and the account's
    usage (`counters.release`), the expunge log at the new mod-sequence, the recycle bin's rows, and the
    deletion with its relations' steps. Under EXPUNGE's locks that is one round trip instead of four. With
    nothing kept in the bin, bodies no longer used are dropped after it, as `remove` does."""
    uids = [row.uid for row in rows]
    parts = [counters.RELEASE_CTES]
    params: list[Any] = counters.release_parameters(mailbox_id, removed, account_id)
    log = ExpungedMessage._meta
    parts.append(
        f"logged AS (INSERT INTO {log.db_table} (mailbox_id, uid, modseq, expunged) "
        "SELECT %s, uid, folder.value, %s FROM unnest(%s::bigint[]) AS uid, folder)"
    )
    params += [mailbox_id, timezone.now(), uids]
    kept = recycling.bin_rows(rows)
    if kept:
        sql, values = bulk.insert_statement(kept)
        parts.append(f"kept AS ({sql})")
        params += values
    parts += steps
    params += [[row.pk for row in rows]] * len(steps)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT value FROM folder", params)
    if not kept:
        recycling.drop_bodies(row.body_id for row in rows)


@functools.cache
def _deletion_steps(ids: str = "%s") -> list[str] | None:
    """On PostgreSQL, Django's Collector as the steps of one statement, each with one parameter (the messages'
    ids; or the array expression `ids`): the messages' DELETE, with each relation's CASCADE (to a model nothing
    else refers to) or SET_NULL. Under EXPUNGE's lock that is one round trip instead of one per relation and the
    Collector's Python. The foreign keys Django creates there are deferred to COMMIT, so the order within the
    statement does not matter. None (the Collector decides) on other databases or for any other kind of
    relation."""
    if connection.vendor != "postgresql":
        return None
    steps = []
    for candidate in get_candidate_relations_to_delete(Message._meta):  # what the Collector looks at
        relation = cast(ForeignObjectRel, candidate)
        related = cast(type[models.Model], relation.related_model)._meta
        table, column = related.db_table, relation.field.column
        if relation.on_delete is models.DO_NOTHING:
            continue
        if relation.on_delete is models.CASCADE and not any(get_candidate_relations_to_delete(related)):
            steps.append(f"DELETE FROM {table} WHERE {column} = ANY({ids})")
        elif relation.on_delete is models.SET_NULL:
            steps.append(f"UPDATE {table} SET {column} = NULL WHERE {column} = ANY({ids})")
        else:
            return None
    named = [f"step{number} AS ({step})" for number, step in enumerate(steps)]
    return [*named, f"gone AS (DELETE FROM {Message._meta.db_table} WHERE id = ANY({ids}))"]


def log_expunged(mailbox_id: int, uids: list[int], modseq: int) -> None:
    """Record UIDs leaving their folder at the folder's mod-sequence, which the caller raised under the folder's
    lock, so IMAP sessions learn of them as changes since a mod-sequence (QRESYNC's VANISHED, RFC 7162 3.2.10)."""
    ExpungedMessage.objects.bulk_create(
        [ExpungedMessage(mailbox_id=mailbox_id, uid=uid, modseq=modseq) for uid in uids]
    )


# Whether the folder (if it is the account's: else no row) has a message flagged \\Deleted (among some UIDs:
# `_chosen`), from the partial index message_deleted.
_ANY_DELETED_SQL = (
    f"SELECT EXISTS (SELECT 1 FROM {Message._meta.db_table} m{{chosen}} WHERE m.mailbox_id = f.id AND m.deleted) "
    f"FROM {Mailbox._meta.db_table} f WHERE f.id = %s AND f.account_id = %s"
)


def expunge(account: Account, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
    """Remove messages flagged \\Deleted (only those among `uids` when given, for UID EXPUNGE).

    Returns the removed UIDs in ascending order. With none to remove (a client's routine EXPUNGE, or another
    session's EXPUNGE was first) nothing is locked: the answer is as of that look, as if this EXPUNGE came
    before any \\Deleted flag set since."""
    chosen, params = ("", []) if uids is None else _chosen(sorted(set(uids)))
    with connection.cursor() as cursor:
        cursor.execute(_ANY_DELETED_SQL.format(chosen=chosen), [*params, mailbox_id, account.pk])
        found = cursor.fetchone()
    if found is not None and not found[0]:
        return []
    if flights.usable() and recycling.keeping() and _deletion_steps() is not None:
        return _expunge_in_one_flight(account, mailbox_id, uids)
    return _expunge(account, mailbox_id, uids)


_DOOMED_IDS = "ARRAY(SELECT id FROM doomed)"  # by the primary key (as a join, the planner may read the table)
_BIN_FLAGS = ", ".join(f"CASE WHEN d.{name} THEN '\\{name.capitalize()}' END" for name in SYSTEM_FLAGS.values())


@functools.cache
def _expunge_statement(chosen: str) -> str:
    """EXPUNGE's removal as one statement, after the folder's and the account's locks in the same transaction (so
    its snapshot has every change committed before them): the folder's \\Deleted messages (among the UIDs of
    `chosen`, a join of `_chosen`), if the folder is the account's; their share off the folder's counts with its
    next mod-sequence and off the account's usage (`counters.release_found_ctes`), the expunge log, the recycle
    bin's rows (`recycling.bin_rows`, flags as `flag_names` spells them), the deletion and its relations' steps.
    It returns the UIDs removed."""
    mailbox, message = Mailbox._meta.db_table, Message._meta.db_table
    flags = ", ".join(f"m.{column}" for column in SYSTEM_FLAGS.values())
    doomed = (
        "m.id, m.uid, m.size, m.body_id, m.account_id, m.subject, m.from_name, m.from_address, m.internal_date, "
        f"m.keywords, {flags}, f.name AS folder_name"
    )
    return f"""
        WITH doomed AS (
            SELECT {doomed} FROM {message} m JOIN {mailbox} f ON f.id = m.mailbox_id{chosen}
            WHERE m.mailbox_id = %(folder)s AND f.account_id = %(account)s AND m.deleted
        ),
        {counters.release_found_ctes("doomed")},
        logged AS (
            INSERT INTO {ExpungedMessage._meta.db_table} (mailbox_id, uid, modseq, expunged)
            SELECT %(folder)s, d.uid, folder.value, %(now)s FROM doomed d, folder
        ),
        kept AS (
            INSERT INTO {RecycledMessage._meta.db_table} (account_id, folder_name, body_id, size, subject, from_name,
                from_address, internal_date, flags, removed)
            SELECT d.account_id, d.folder_name, d.body_id, d.size, d.subject, d.from_name, d.from_address,
                d.internal_date, concat_ws(' ', {_BIN_FLAGS}, NULLIF(btrim(d.keywords), '')), %(now)s
            FROM doomed d
        ),
        {", ".join(_deletion_steps(_DOOMED_IDS) or [])}
        SELECT uid FROM doomed ORDER BY uid
    """


def _expunge_in_one_flight(account: Account, mailbox_id: int, uids: Sequence[int] | None) -> list[int]:
    """`_expunge` in one flight (`flights`): BEGIN, the folder's and the account's locks, `_expunge_statement`
    and COMMIT, sent together; the locks are held only while PostgreSQL runs them. Only with the bin kept (no
    bodies to drop after the removal)."""
    chosen, chosen_params = ("", []) if uids is None else _chosen(sorted(set(uids)))
    params = {"folder": mailbox_id, "account": account.pk, "now": timezone.now()}
    if chosen_params:
        chosen, params["uids"] = chosen.replace("%s", "%(uids)s"), chosen_params[0]
    with flights.transaction() as flight:
        flight.lock_folder(mailbox_id, account.pk, account=True)
        removed = flight.send(_expunge_statement(chosen), params)
        flight.commit()
    flight.require_folder()
    return [uid for (uid,) in removed.fetchall()]


@action
def _expunge(account: Account, mailbox_id: int, uids: Sequence[int] | None) -> list[int]:
    lock(folders=[mailbox_id], accounts=[account.pk], owner=account.pk)
    condition = Q(deleted=True)
    if uids is not None:
        condition &= Q(uid__among=uids)
    return remove(account.pk, mailbox_id, condition)


@action
def delete_messages(account: Account, mailbox_id: int, uids: Sequence[int]) -> list[int]:
    """Remove these messages whatever their flags (POP3 DELE at QUIT, webmail "delete forever")."""
    lock(folders=[mailbox_id], accounts=[account.pk], owner=account.pk)
    return remove(account.pk, mailbox_id, Q(uid__among=uids))
