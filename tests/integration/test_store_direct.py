"""One message into one folder in one statement after its conversation's look (mailboxes/actions/direct.py): the
MX's common delivery and IMAP APPEND, and every case they leave to the usual transaction. Outside a transaction
(transactional_db): that is where the statement runs."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from imapd import store
from mailboxes import actions
from mailboxes.actions import OverQuota, RecipientStatus, direct, storing
from mailboxes.models import Account, Mailbox, Message, MessageBody, Role
from mailcore.dsn import Requests
from mailcore.mime import parse_message
from tests.integration.test_store_delivery import RAW

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="one statement on PostgreSQL only")


def message(number: int, *, subject: bytes = b"Hello there", references: bytes = b"") -> bytes:
    raw = RAW.replace(b"<m1@", b"<m%d@" % number).replace(b"Hello there", subject)
    return raw.replace(b"Date:", b"References: " + references + b"\r\nDate:") if references else raw


def mx_delivery(raw: bytes, rcpt: str) -> tuple[actions.DeliveryReport, int]:
    """`deliver_many` as the MX calls it (with its RCPT answer); its report and how many statements it took."""
    at_rcpt = {rcpt: actions.resolve_recipient(rcpt)}
    with CaptureQueriesContext(connection) as queries:
        [report] = actions.deliver_many([(raw, "s@remote.test", [rcpt])], at_rcpt)
    assert isinstance(report, actions.DeliveryReport)
    return report, len(queries)


def inbox(account: Account) -> Mailbox:
    return Mailbox.objects.get(account=account, role=Role.INBOX)


def stored(account: Account) -> list[Message]:
    return list(Message.objects.filter(mailbox=inbox(account)).order_by("uid"))


@pytest.fixture
def alice(transactional_db, make_account) -> Account:
    return make_account("alice@example.com")


def test_one_statement_stores_what_the_transaction_stores(alice, make_account) -> None:
    bob = make_account("bob@example.com")
    report, statements = mx_delivery(RAW, alice.address)
    assert statements == 2  # the conversation's look (no lock), then the statement
    assert report.results == {alice.address: RecipientStatus.LOCAL}
    [direct] = stored(alice)
    assert report.message_ids == [direct.pk]
    # The same message for bob, through the usual transaction (an alias forward makes it go that way).
    actions.create_alias("bob-and-out@example.com", ["bob@example.com", "out@elsewhere.test"])
    report, statements = mx_delivery(RAW, "bob-and-out@example.com")
    assert statements > 1
    [usual] = stored(bob)
    columns = [field.attname for field in Message._meta.concrete_fields]
    different = {"id", "account_id", "mailbox_id", "body_id", "thread_id", "internal_date"}
    assert {name: getattr(direct, name) for name in columns if name not in different} == {
        name: getattr(usual, name) for name in columns if name not in different
    }
    assert bytes(direct.body.raw) == bytes(usual.body.raw)
    assert (direct.uid, direct.modseq) == (1, 2)
    folder = inbox(alice)
    alice.refresh_from_db()
    assert (folder.uidnext, folder.message_count, folder.unseen_count, folder.total_size) == (2, 1, 1, direct.size)
    assert (alice.used_bytes, alice.used_messages) == (direct.size, 1)


def test_the_copy_joins_the_conversation_of_its_first_known_reference(alice) -> None:
    for number in (1, 2):
        mx_delivery(message(number), alice.address)
    first, second = stored(alice)
    assert first.thread_id != second.thread_id
    # References lists the oldest first: the first one the account has decides, as in a group.
    _, statements = mx_delivery(
        message(3, subject=b"Quick answer", references=b"<unknown@remote.test> <m1@remote.test> <m2@remote.test>"),
        alice.address,
    )
    assert statements == 2
    assert stored(alice)[-1].thread_id == first.thread_id
    mx_delivery(message(4, subject=b"Unrelated"), alice.address)
    assert stored(alice)[-1].thread_id not in {first.thread_id, second.thread_id}
    # A second copy of a stored message (its own Message-ID known) joins the first copy's conversation.
    mx_delivery(message(2), alice.address)
    assert stored(alice)[-1].thread_id == second.thread_id


def test_a_reply_subject_without_known_references_joins_by_subject(alice) -> None:
    mx_delivery(message(1), alice.address)
    report, statements = mx_delivery(message(2, subject=b"Re: Hello there"), alice.address)
    assert statements == 3  # the references, the subject, then the statement
    assert report.results == {alice.address: RecipientStatus.LOCAL}
    first, reply = stored(alice)
    assert reply.thread_id == first.thread_id


def test_a_full_mailbox_undoes_the_statement_and_the_usual_way_refuses_it(make_account, transactional_db) -> None:
    size = len(actions.with_return_path(message(1), "s@remote.test"))
    small = make_account("small@example.com", quota_bytes=size + 10)
    at_rcpt = {small.address: actions.resolve_recipient(small.address)}  # room for one, at RCPT
    actions.deliver_many([(message(1), "s@remote.test", [small.address])], at_rcpt)
    [report] = actions.deliver_many([(message(2), "s@remote.test", [small.address])], at_rcpt)
    assert isinstance(report, actions.DeliveryReport)
    assert report.results == {small.address: RecipientStatus.OVER_QUOTA}
    [kept] = stored(small)
    folder = inbox(small)
    small.refresh_from_db()
    assert (folder.message_count, folder.unseen_count, folder.total_size) == (1, 1, kept.size)
    assert (small.used_bytes, small.used_messages) == (kept.size, 1)
    assert MessageBody.objects.count() == 1


def test_an_account_disabled_since_rcpt_gets_nothing(alice) -> None:
    at_rcpt = {alice.address: actions.resolve_recipient(alice.address)}
    Account.objects.filter(pk=alice.pk).update(is_active=False)
    [report] = actions.deliver_many([(RAW, "s@remote.test", [alice.address])], at_rcpt)
    assert isinstance(report, actions.DeliveryReport)
    assert report.results[alice.address] is not RecipientStatus.LOCAL
    assert stored(alice) == []
    assert MessageBody.objects.count() == 0
    folder = inbox(alice)
    assert (folder.message_count, folder.total_size) == (0, 0)


def test_what_the_statement_leaves_to_the_usual_transaction(alice, make_account) -> None:
    make_account("bob@example.com")
    at_rcpt = {address: actions.resolve_recipient(address) for address in (alice.address, "bob@example.com")}
    cases: dict[str, dict[str, Any]] = {
        "two recipients": dict(recipients=[alice.address, "bob@example.com"]),
        "a junk verdict": dict(junk=[True]),
        "a notice of success": dict(requests=[Requests(notify={alice.address: "SUCCESS"})]),
        "within a transaction": dict(atomic=True),
        "no RCPT answer": dict(resolved={}),
    }
    for number, (case, options) in enumerate(cases.items(), start=10):
        recipients = options.get("recipients", [alice.address])
        within = transaction.atomic() if options.get("atomic") else contextlib.nullcontext()
        with CaptureQueriesContext(connection) as queries, within:
            [report] = actions.deliver_many(
                [(message(number), "s@remote.test", recipients)],
                options.get("resolved", at_rcpt),
                options.get("junk", ()),
                options.get("requests", ()),
            )
        assert isinstance(report, actions.DeliveryReport), case
        assert report.results[alice.address] is RecipientStatus.LOCAL, case
        assert len(queries) > 1, case


def test_imap_append_takes_the_folder_and_one_statement(alice) -> None:
    mx_delivery(message(1), alice.address)
    when = datetime.datetime(2026, 11, 1, 9, 30, tzinfo=datetime.UTC)
    reply = message(2, subject=b"Quick answer", references=b"<m1@remote.test>")
    with CaptureQueriesContext(connection) as queries:
        appended = store.append(alice, "Sent", reply, ["\\Seen", "\\Deleted", "$Label1", "\\Recent"], when)
    assert len(queries) == 3  # the folder by its name, the conversation, then the statement
    sent = Mailbox.objects.get(account=alice, name="Sent")
    assert appended == (sent.uidvalidity, 1)
    copy = Message.objects.get(mailbox=sent)
    assert (copy.uid, copy.seen, copy.deleted, copy.flagged, copy.keywords) == (1, True, True, False, " $Label1 ")
    assert copy.internal_date == when
    assert copy.thread_id == stored(alice)[0].thread_id
    size = len(reply)
    assert (sent.uidnext, sent.message_count, sent.unseen_count, sent.deleted_count) == (2, 1, 0, 1)
    assert (sent.total_size, sent.deleted_size) == (size, size)
    alice.refresh_from_db()
    assert alice.used_messages == 2


def test_imap_append_over_quota_is_refused_by_the_usual_way(make_account, transactional_db) -> None:
    small = make_account("small@example.com", quota_bytes=len(RAW) + 10)
    store.append(small, "Drafts", RAW, [], None)
    with pytest.raises(OverQuota):
        store.append(small, "Drafts", message(2), [], None)
    drafts = Mailbox.objects.get(account=small, name="Drafts")
    assert (drafts.message_count, drafts.total_size) == (1, len(RAW))
    assert Message.objects.filter(mailbox=drafts).count() == MessageBody.objects.count() == 1


def test_a_folder_of_another_account_takes_nothing(alice, make_account) -> None:
    bob = make_account("bob@example.com")
    bobs = Mailbox.objects.get(account=bob, role=Role.INBOX)
    row = storing.new_row(parse_message(RAW), RAW, account_id=alice.pk, mailbox_id=bobs.pk)
    assert direct.store(row, folder=bobs.pk) is False
    assert Message.objects.count() == MessageBody.objects.count() == 0
    bobs.refresh_from_db()
    alice.refresh_from_db()
    assert (bobs.uidnext, bobs.message_count, alice.used_bytes, alice.used_messages) == (1, 0, 0, 0)
