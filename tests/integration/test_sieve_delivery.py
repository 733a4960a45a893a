"""Sieve in the delivery actions: messages filed, flagged, copied, discarded and answered in the delivery
transaction, on every delivery path (MX groups, single deliveries, submission)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes import actions
from mailboxes.models import Account, Mailbox, Message, MessageBody, Role
from relay.models import OutboundMessage
from sieve import scripts

pytestmark = pytest.mark.django_db


def mail(subject: str, sender: str = "bob@remote.example", to: str = "alice@example.com") -> bytes:
    return f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x>\r\n\r\nHello.\r\n".encode()


RULES = """require ["fileinto", "mailbox", "imap4flags", "copy"];
if header :contains "subject" "invoice" { fileinto :create :flags "\\\\Seen $Bill" "Bills/2026"; stop; }
if header :contains "subject" "spam" { discard; stop; }
if header :contains "subject" "keep-too" { fileinto :copy "Archive"; }
if header :contains "subject" "star" { addflag "\\\\Flagged"; }
"""


@pytest.fixture
def alice(make_account) -> Account:
    account = make_account("alice@example.com")
    scripts.put_script(account, "rules", RULES, activate=True)
    return account


def where(account: Account, subject: str) -> list[tuple[str, bool, bool, str]]:
    return [
        (m.mailbox.name, m.seen, m.flagged, m.keywords.strip())
        for m in Message.objects.filter(account=account, subject=subject).select_related("mailbox").order_by("pk")
    ]


def used(account: Account) -> int:
    return Account.objects.get(pk=account.pk).used_bytes


def test_filed_into_a_created_folder_with_flags(alice):
    raw = mail("invoice 7")
    report = actions.deliver(raw, "bob@remote.example", [alice.address])
    assert report.results[alice.address] == actions.RecipientStatus.LOCAL
    assert where(alice, "invoice 7") == [("Bills/2026", True, False, "$Bill")]
    assert Mailbox.objects.filter(account=alice, name="Bills").exists()
    message = Message.objects.get(subject="invoice 7")
    assert message.uid == 1
    assert used(alice) == message.size


def test_discarded_message_leaves_nothing_behind(alice):
    report = actions.deliver(mail("spam offer"), "bob@remote.example", [alice.address])
    assert report.results[alice.address] == actions.RecipientStatus.LOCAL
    assert not Message.objects.exists()
    assert not MessageBody.objects.exists()
    assert used(alice) == 0


def test_copy_keeps_the_inbox_copy_and_charges_both(alice):
    actions.deliver(mail("keep-too"), "bob@remote.example", [alice.address])
    assert where(alice, "keep-too") == [("INBOX", False, False, ""), ("Archive", False, False, "")]
    assert used(alice) == 2 * Message.objects.filter(subject="keep-too").first().size
    assert MessageBody.objects.count() == 1


def test_flags_on_the_inbox_copy(alice):
    actions.deliver(mail("star this"), "bob@remote.example", [alice.address])
    assert where(alice, "star this") == [("INBOX", False, True, "")]


def test_a_group_from_the_mx_with_and_without_scripts(alice, make_account):
    carol = make_account("carol@example.com")
    deliveries = [
        (mail("invoice 1"), "bob@remote.example", [alice.address, carol.address]),
        (mail("hello"), "bob@remote.example", [alice.address]),
        (mail("spam 2"), "bob@remote.example", [alice.address, carol.address]),
    ]
    reports = actions.deliver_many(deliveries)
    assert all(isinstance(r, actions.DeliveryReport) for r in reports)
    assert where(alice, "invoice 1") == [("Bills/2026", True, False, "$Bill")]
    assert where(carol, "invoice 1") == [("INBOX", False, False, "")]
    assert where(alice, "hello") == [("INBOX", False, False, "")]
    assert where(alice, "spam 2") == []
    assert where(carol, "spam 2") == [("INBOX", False, False, "")]
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    assert list(Message.objects.filter(mailbox=inbox).values_list("uid", flat=True)) == [1]


def test_accounts_without_scripts_pay_one_query_per_group(make_account):
    carol = make_account("carol@example.com")
    actions.deliver(mail("warm up"), "bob@remote.example", [carol.address])
    with CaptureQueriesContext(connection) as queries:
        actions.deliver(mail("plain"), "bob@remote.example", [carol.address])
    sieve = [q["sql"] for q in queries.captured_queries if "sieve_" in q["sql"]]
    assert len(sieve) == 1


def statements(queries: CaptureQueriesContext) -> list[str]:
    """What a delivery sent to the database, without the test transaction's savepoints."""
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def test_a_group_filed_into_one_folder_costs_one_statement_more_than_the_inbox(make_account):
    """The MX's group of ten for one recipient: a script that files every message into a folder adds one
    statement (the script, the account and its folders, read together) to the Inbox's three: the threads, the
    folder's UIDs and the quota (one statement, which locks the folder and then the account), and the bodies with
    their copies (the change notification is sent by the folder's trigger). The filed copies share them: no lock
    statement, no second thread lookup or quota charge."""
    plain, filtered = make_account("plain@example.com"), make_account("filtered@example.com")
    scripts.put_script(filtered, "rules", 'require "fileinto"; fileinto "Archive";', activate=True)
    counts = {}
    for account in (plain, filtered):
        resolved = {account.address: actions.resolve_recipient(account.address)}
        group = [
            (mail(f"{account.pk}-{n}", to=account.address), "bob@remote.example", [account.address]) for n in range(10)
        ]
        with CaptureQueriesContext(connection) as queries:
            reports = actions.deliver_many(group, resolved)
        assert all(isinstance(r, actions.DeliveryReport) and r.message_ids for r in reports)
        counts[account.address] = len(statements(queries))
    assert counts == {"plain@example.com": 3, "filtered@example.com": 4}
    filed = Message.objects.filter(account=filtered)
    assert {m.mailbox.name for m in filed.select_related("mailbox")} == {"Archive"}
    assert sorted(filed.values_list("uid", flat=True)) == list(range(1, 11))
    assert used(filtered) == sum(filed.values_list("size", flat=True))


def test_copies_of_one_message_share_its_conversation_and_are_reported(alice):
    report = actions.deliver(mail("keep-too again"), "bob@remote.example", [alice.address])
    copies = Message.objects.filter(subject="keep-too again").order_by("pk")
    assert [m.mailbox.name for m in copies] == ["INBOX", "Archive"]
    assert len({m.thread_id for m in copies}) == 1
    assert report.message_ids == [m.pk for m in copies]


def test_a_filing_account_disabled_since_rcpt_gets_nothing(alice, make_account):
    """RCPT's lookup saves one at DATA; an account disabled in between is caught when its folder's UIDs are
    reserved, whichever folder the script chose, and the message is looked up again and refused for it."""
    carol = make_account("carol@example.com")
    at_rcpt = {address: actions.resolve_recipient(address) for address in (alice.address, carol.address)}
    Account.objects.filter(pk=alice.pk).update(is_active=False)
    reports = actions.deliver_many(
        [
            (mail("invoice 3"), "bob@remote.example", [alice.address]),
            (mail("for carol", to=carol.address), "bob@remote.example", [carol.address]),
        ],
        at_rcpt,
    )
    assert [r.results for r in reports if isinstance(r, actions.DeliveryReport)] == [
        {alice.address: actions.RecipientStatus.UNKNOWN},
        {carol.address: actions.RecipientStatus.LOCAL},
    ]
    assert list(Message.objects.values_list("account__address", "mailbox__name")) == [(carol.address, "INBOX")]
    assert used(alice) == 0


def test_submission_to_a_local_user_is_filtered_too(alice, make_account):
    make_account("dave@example.com")
    raw = mail("invoice from dave", sender="dave@example.com")
    report = actions.submit(raw, "dave@example.com", [alice.address])
    assert report.results[alice.address] == actions.RecipientStatus.LOCAL
    assert where(alice, "invoice from dave") == [("Bills/2026", True, False, "$Bill")]


def test_vacation_and_redirect_are_queued_in_the_delivery_transaction(make_account):
    erin = make_account("erin@example.com")
    scripts.put_script(
        erin,
        "away",
        'require ["vacation", "copy"]; redirect :copy "erin@elsewhere.example"; vacation "Away.";',
        activate=True,
    )
    actions.deliver(mail("question", to="erin@example.com"), "bob@remote.example", [erin.address])
    queued = {(m.sender, tuple(m.recipients.values_list("address", flat=True))) for m in OutboundMessage.objects.all()}
    assert queued == {("bob@remote.example", ("erin@elsewhere.example",)), ("", ("bob@remote.example",))}
    assert where(erin, "question") == [("INBOX", False, False, "")]
    actions.deliver(mail("again", to="erin@example.com"), "bob@remote.example", [erin.address])
    assert OutboundMessage.objects.filter(sender="").count() == 1  # one vacation reply per period


def test_a_broken_script_keeps_the_message(make_account, caplog):
    frank = make_account("frank@example.com")
    scripts.put_script(frank, "loop", "".join(f'redirect "r{i}@remote.example";' for i in range(9)), activate=True)
    actions.deliver(mail("hi", to="frank@example.com"), "bob@remote.example", [frank.address])
    assert where(frank, "hi") == [("INBOX", False, False, "")]
    assert not OutboundMessage.objects.exists()
    assert "message kept in the Inbox" in caplog.text


def test_junk_verdict_and_scripts(alice):
    reports = actions.deliver_many(
        [
            (mail("invoice 9"), "bob@remote.example", [alice.address]),
            (mail("hello"), "bob@remote.example", [alice.address]),
        ],
        junk=[True, True],
    )
    assert all(isinstance(r, actions.DeliveryReport) for r in reports)
    # Filed by the script: stays where the script put it; left in the Inbox: the MX's verdict moves it to Junk.
    assert where(alice, "invoice 9") == [("Bills/2026", True, False, "$Bill")]
    assert where(alice, "hello") == [("Junk", False, False, "")]


EREJECT = 'require "ereject"; if header :contains "subject" "offer" { ereject "No offers, thank you."; }'


def test_mx_group_refuses_only_messages_every_recipient_rejects(make_account):
    """RFC 5429 2.1.1 on the MX: a message rejected for all its recipients is stored for no one and sends no
    notice (the DATA reply says it); one rejected for some is stored for the others, and the rejecting ones
    send a notice (2.1.2). The rest of the group is stored as usual, each message once."""
    erin = make_account("erin@example.com")
    carol = make_account("carol@example.com")
    actions.create_alias("both@example.com", [erin.address, carol.address])
    scripts.put_script(erin, "rules", EREJECT, activate=True)
    deliveries = [
        (mail("offer 1", to=erin.address), "bob@remote.example", [erin.address]),
        (mail("offer 2", to=erin.address), "bob@remote.example", [erin.address, carol.address]),
        (mail("offer 3", to="both@example.com"), "bob@remote.example", ["both@example.com"]),
        (mail("hello", to=erin.address), "bob@remote.example", [erin.address]),
        (mail("offer 4", to=erin.address), "", [erin.address]),
    ]
    reports = actions.deliver_many(deliveries)
    assert all(isinstance(r, actions.DeliveryReport) for r in reports)
    refused = [r.refused for r in reports if isinstance(r, actions.DeliveryReport)]
    assert refused == ["No offers, thank you.", None, None, None, "No offers, thank you."]
    assert [where(erin, s) for s in ("offer 1", "offer 2", "offer 3", "hello", "offer 4")] == [
        [],
        [],
        [],
        [("INBOX", False, False, "")],
        [],
    ]
    assert where(carol, "offer 2") == where(carol, "offer 3") == [("INBOX", False, False, "")]
    # Two notices, for offer 2 and offer 3 (the accepted ones), none for the refused and none to <>.
    notices = OutboundMessage.objects.filter(sender="")
    assert [bytes(n.raw).count(b"No offers, thank you.") > 0 for n in notices] == [True, True]
    assert sorted(b"offer 2" in bytes(n.raw) for n in notices) == [False, True]
    # The bodies of the refused messages are not kept.
    assert MessageBody.objects.count() == 3
    assert used(erin) == Message.objects.get(account=erin).size


def test_a_single_delivery_cannot_refuse_and_sends_the_notice(make_account):
    """Outside the MX (webmail sending, a local DSN) nobody can be told in a reply: the notice goes out."""
    erin = make_account("erin@example.com")
    scripts.put_script(erin, "rules", EREJECT, activate=True)
    report = actions.deliver(mail("offer", to=erin.address), "bob@remote.example", [erin.address])
    assert report.refused is None
    assert where(erin, "offer") == []
    [notice] = OutboundMessage.objects.filter(sender="")
    assert b"No offers, thank you." in bytes(notice.raw)


def test_redirect_to_our_own_domain_goes_straight_into_the_store(make_account):
    """From the MX, a redirect to one of our addresses is delivered in the same transaction, not relayed; the
    target's own script runs on it, and what that one sends goes through the relay (its hop recorded), so a loop
    between two accounts still stops at the hop check."""
    erin = make_account("erin@example.com")
    carol = make_account("carol@example.com")
    dave = make_account("dave@example.com")
    scripts.put_script(erin, "fwd", 'redirect "carol@example.com";', activate=True)
    scripts.put_script(dave, "fwd", 'redirect "erin@example.com";', activate=True)
    reports = actions.deliver_many(
        [
            (mail("for erin", to=erin.address), "bob@remote.example", [erin.address]),
            (mail("for dave", to=dave.address), "bob@remote.example", [dave.address]),
        ]
    )
    assert all(isinstance(r, actions.DeliveryReport) for r in reports)
    [copy] = Message.objects.filter(account=carol, subject="for erin")
    assert bytes(copy.body.raw).startswith(b"Return-Path: <bob@remote.example>\r\nX-Sieve-Redirected-By: erin@")
    assert where(erin, "for erin") == []
    # dave -> erin (into the store) -> carol: erin's redirect of a message delivered into the store goes out
    # through the relay, with both hops recorded.
    assert where(dave, "for dave") == where(erin, "for dave") == where(carol, "for dave") == []
    [relayed] = OutboundMessage.objects.all()
    assert list(relayed.recipients.values_list("address", flat=True)) == ["carol@example.com"]
    assert bytes(relayed.raw).count(b"X-Sieve-Redirected-By: ") == 2


def test_vacation_reply_to_a_local_sender_lands_in_their_inbox(make_account):
    erin = make_account("erin@example.com")
    dave = make_account("dave@example.com")
    scripts.put_script(erin, "away", 'require "vacation"; vacation :subject "Away" "Back on Monday.";', activate=True)
    actions.deliver_many([(mail("question", sender=dave.address, to=erin.address), dave.address, [erin.address])])
    assert where(erin, "question") == [("INBOX", False, False, "")]
    [reply] = Message.objects.filter(account=dave, subject="Away")
    assert bytes(reply.body.raw).startswith(b"Return-Path: <>\r\n")
    assert not OutboundMessage.objects.exists()


def test_a_target_without_room_or_under_locks_gets_it_through_the_relay(make_account):
    erin = make_account("erin@example.com")
    make_account("full@example.com", quota_bytes=10)
    scripts.put_script(erin, "fwd", 'redirect "full@example.com";', activate=True)
    actions.deliver_many([(mail("too big", to=erin.address), "bob@remote.example", [erin.address])])
    # Submission locks its recipients before it runs scripts: their redirects take the relay, as before.
    actions.submit(mail("submitted", sender="erin@example.com", to=erin.address), erin.address, [erin.address])
    queued = [(m.subject, tuple(m.recipients.values_list("address", flat=True))) for m in OutboundMessage.objects.all()]
    assert queued == [("too big", ("full@example.com",)), ("submitted", ("full@example.com",))]
    assert not Message.objects.filter(account__address="full@example.com").exists()
