"""COPY in the store: the copies are the messages, renumbered in the target folder in UID order, in one
statement whatever their number."""

from __future__ import annotations

import datetime

from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from mailboxes import actions
from mailboxes.models import ExpungedMessage, Mailbox, Message, Role


def raw(number: int) -> bytes:
    return (
        f"From: Sender {number} <sender{number}@remote.test>\r\nTo: alice@example.com\r\n"
        f"Subject: copy {number}\r\nMessage-ID: <copy.{number}@remote.test>\r\n"
        f"Date: Mon, 01 Jan 2024 10:{number:02d}:00 +0000\r\n\r\nbody of {number}\r\n"
    ).encode()


def columns(message: Model) -> dict[str, object]:
    """Every stored column but the row's id, folder, UID and mod-sequence."""
    kept = {"id", "mailbox_id", "uid", "modseq"}
    return {f.column: getattr(message, f.attname) for f in Message._meta.concrete_fields if f.column not in kept}


def test_copies_keep_every_column_and_get_uids_in_order_after_the_targets_own(db, make_account) -> None:
    alice = make_account("alice@example.com")
    inbox = alice.mailboxes.get(role=Role.INBOX).pk
    archive = alice.mailboxes.get(role=Role.ARCHIVE).pk
    for number in range(1, 6):
        date = datetime.datetime(2024, 1, number, 8, tzinfo=datetime.UTC)
        actions.append(alice, inbox, raw(number), flags=["\\Seen", f"$kw{number}"], internal_date=date)
    actions.append(alice, archive, raw(9))
    actions.set_flags(alice, inbox, [2, 4], ["\\Deleted"], actions.FlagMode.ADD)
    assert actions.expunge(alice, inbox) == [2, 4]
    actions.set_flags(alice, inbox, [3], ["\\Flagged"], actions.FlagMode.ADD)
    alice.refresh_from_db()
    used = alice.used_bytes, alice.used_messages
    logged = ExpungedMessage.objects.count()

    pairs = actions.copy(alice, inbox, [5, 99, 1, 3], archive)

    assert pairs == [(1, 2), (3, 3), (5, 4)], "UIDs the folder lacks are left out; the others keep their order"
    target = Mailbox.objects.get(pk=archive)
    assert target.uidnext == 5
    sources = {m.uid: m for m in Message.objects.filter(mailbox_id=inbox)}
    copies = {m.uid: m for m in Message.objects.filter(mailbox_id=archive, uid__gte=2)}
    for source_uid, new_uid in pairs:
        assert columns(copies[new_uid]) == columns(sources[source_uid])
        assert copies[new_uid].modseq == target.highestmodseq
        assert copies[new_uid].pk != sources[source_uid].pk
    assert actions.flag_names(copies[3]) == ["\\Seen", "\\Flagged", "$kw3"]
    alice.refresh_from_db()
    copied = sum(sources[uid].size for uid, _ in pairs)
    assert (alice.used_bytes, alice.used_messages) == (used[0] + copied, used[1] + 3)
    assert ExpungedMessage.objects.count() == logged, "a copy takes nothing out of a folder"
    assert actions.copy(alice, inbox, [2, 4], archive) == [], "expunged messages are not copied"


def test_copying_many_messages_reads_none_of_them_into_python(db, make_account) -> None:
    alice = make_account("alice@example.com")
    inbox = alice.mailboxes.get(role=Role.INBOX).pk
    archive = alice.mailboxes.get(role=Role.ARCHIVE).pk
    for number in range(1, 42):
        actions.append(alice, inbox, raw(number))
    with CaptureQueriesContext(connection) as one:
        assert actions.copy(alice, inbox, [41], archive) == [(41, 1)]
    with CaptureQueriesContext(connection) as many:
        pairs = actions.copy(alice, inbox, list(range(1, 41)), archive)
    assert pairs == [(uid, uid + 1) for uid in range(1, 41)]
    assert len(many.captured_queries) == len(one.captured_queries), "as many statements for 40 as for 1"
    reading = [q["sql"] for q in many.captured_queries if "imap_envelope" in q["sql"]]
    assert len(reading) == 1, reading
    assert reading[0].lstrip().startswith("INSERT"), "the database copies the rows itself, INSERT ... SELECT"
    assert "SELECT" in reading[0]
    assert Message.objects.filter(mailbox_id=archive).count() == 41
