"""One message into one folder in one statement, on PostgreSQL: the MX's common delivery and IMAP APPEND.

The copy's row is built first, its conversation looked up (`storing.new_row`, which takes no lock). Then one
statement, its own transaction (autocommit), reserves the folder's UID and adds to its counts (the folder's row
lock), charges the account (its row lock, after the folder's: the store's lock order, as `counters.reserve`) and
inserts the body and the copy. The locks are held only while PostgreSQL runs it, never across a round trip to
the listener, and the message costs two round trips instead of five (BEGIN, the conversation, the reservation,
the insert, COMMIT).

The conversation stays a statement of its own: inside the larger one, a plan PostgreSQL made while the table
was nearly empty (a listener started on a new database keeps it) read every message of the account to find a
reference, 10 ms a delivery at 5,000 messages.

What the statement cannot decide alone goes the usual way (the action's transaction), which it leaves untouched:
an account over its quota, or disabled, or a folder gone (nothing is charged: the statement then fails, which
undoes it). The MX uses it only for a message whose one recipient reaches one account with no Sieve script, no
junk verdict and no notice to send (`delivery.deliver_many`); `messages.append` whenever `flights.usable()`.
"""

from __future__ import annotations

import functools

from django.db import DataError, connection, connections
from django.db.models import Field
from psycopg import errors

from mailboxes import bulk
from mailboxes.actions import counters, storing
from mailboxes.models import Message, MessageBody, Role
from mailboxes.recipients import DeliveryReport, RecipientStatus, Resolution
from mailcore.mime import parse_message

# The columns of the copy that the statement fills in itself, from its other parts.
_COMPUTED = ("mailbox_id", "uid", "modseq", "thread_id", "body_id")
_INBOX = "role = %(role)s"
_FOLDER = "id = %(folder)s"


@functools.cache
def _statement(folder: str) -> tuple[str, list[Field]]:
    """The statement for the folder chosen by `folder` (`_INBOX` or `_FOLDER`), and the copy's fields whose values
    travel as parameters (in its order)."""
    quote = connection.ops.quote_name
    inserted = bulk.inserted_fields(Message)
    fields = [field for field in inserted if field.attname not in _COMPUTED]
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(f"%(c{n})s" for n in range(len(fields)))
    by_name = {field.attname: field.column for field in inserted}
    computed = ", ".join(quote(by_name[name]) for name in _COMPUTED)
    sql = f"""
        {counters.RESERVE_CTES.format(folder=folder)},
        parent AS (
            -- Nothing charged (the account is full or disabled, or the folder is gone): 1/0 fails the statement,
            -- which undoes any reservation, and the message goes the usual way, which says why.
            INSERT INTO {quote(MessageBody._meta.db_table)} (raw, size)
            SELECT %(raw)s, %(size)s FROM folder WHERE 1 / (SELECT count(*) FROM charged) = 1
            RETURNING id
        ),
        copy AS (
            INSERT INTO {quote(Message._meta.db_table)} ({columns}, {computed})
            SELECT {values}, folder.id, folder.first_uid, folder.highestmodseq, %(thread)s, parent.id
            FROM folder, parent
            RETURNING id, mailbox_id, uid, modseq, body_id
        )
        SELECT id, mailbox_id, uid, modseq, body_id FROM copy
    """
    return sql, fields


def store(row: Message, **folder: object) -> bool:
    """Store `row` (from `storing.new_row`) in the folder that `folder` names (`role=` or `folder=` its id): True
    with the row's and its body's ids, folder, UID and mod-sequence set; False when nothing was stored and it
    must go the usual way."""
    body = row.body
    assert body is not None
    sql, fields = _statement(_INBOX if "role" in folder else _FOLDER)
    wrapper = connections[connection.alias]
    params = {f"c{n}": field.get_db_prep_save(field.pre_save(row, True), wrapper) for n, field in enumerate(fields)}
    params.update(
        counters.reserve_parameters(row.account_id, [body.size], counters.Tally.of(body.size, row.seen, row.deleted)),
        **folder,
        raw=body.raw,
        thread=row.thread_id,
    )
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql, params)
            [(row.pk, row.mailbox_id, row.uid, row.modseq, body.pk)] = cursor.fetchall()
    except DataError as exc:
        if isinstance(exc.__cause__, errors.DivisionByZero):
            return False  # nothing charged, nothing stored
        raise
    for stored in (row, body):
        stored._state.adding = False
        stored._state.db = wrapper.alias
    row.body = body  # its key column too, as `bulk.insert_linked` sets it
    return True


def deliver(raw: bytes, envelope_sender: str, resolution: Resolution) -> DeliveryReport | Exception | None:
    """Store a received message in the Inbox of the one account `resolution` reaches; the report, or the
    parser's exception (nothing stored), or None when it must go the usual way (nothing stored either)."""
    [account_id] = resolution.account_ids
    stored = storing.with_return_path(raw, envelope_sender)
    try:
        parsed = parse_message(stored)
    except Exception as exc:
        return exc
    # The statement finds the Inbox: the row's folder is set once stored.
    row = storing.new_row(parsed, stored, account_id=account_id, mailbox_id=0)
    if not store(row, role=Role.INBOX.value):
        return None
    report = DeliveryReport(message_ids=[row.pk])
    report.results[resolution.address] = RecipientStatus.LOCAL
    return report
