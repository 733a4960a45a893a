"""Delivery into the store: recipient resolution (aliases, catch-all, user+tag), one shared body, quota."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps

from mailboxes import actions
from mailboxes.actions import RecipientStatus
from mailboxes.models import Account, Message, MessageBody, Role
from mailcore.dsn import Requests
from mailcore.mime import MimeTooDeep

RAW = (
    b"From: Sender <sender@remote.test>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: Hello there\r\n"
    b"Message-ID: <m1@remote.test>\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
    b"\r\n"
    b"Hi Alice,\r\nthis is the body.\r\n"
)


def inbox_messages(account) -> list[Message]:
    return list(Message.objects.filter(mailbox__account=account, mailbox__role=Role.INBOX).order_by("uid"))


@pytest.fixture
def people(make_account):
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    carol = make_account("carol@example.com")
    return alice, bob, carol


def test_delivery_stores_raw_bytes_with_return_path_and_parsed_columns(people) -> None:
    alice, _, _ = people
    report = actions.deliver(RAW, "sender@remote.test", ["alice@example.com"])
    assert report.results == {"alice@example.com": RecipientStatus.LOCAL}
    [message] = inbox_messages(alice)
    assert bytes(message.body.raw) == b"Return-Path: <sender@remote.test>\r\n" + RAW
    assert message.size == len(message.body.raw)
    assert message.uid == 1
    assert message.subject == "Hello there"
    assert (message.from_name, message.from_address) == ("Sender", "sender@remote.test")
    assert message.message_id == "<m1@remote.test>"
    assert message.snippet.startswith("Hi Alice, this is the body.")
    alice.refresh_from_db()
    assert alice.used_bytes == message.size


def test_three_recipients_and_an_alias_share_one_body(people) -> None:
    alice, bob, carol = people
    actions.create_alias("team@example.com", ["alice@example.com", "bob@example.com"])
    report = actions.deliver(
        RAW, "sender@remote.test", ["alice@example.com", "bob@example.com", "carol@example.com", "team@example.com"]
    )
    assert set(report.results.values()) == {RecipientStatus.LOCAL}
    assert MessageBody.objects.count() == 1
    for account in (alice, bob, carol):
        assert len(inbox_messages(account)) == 1, f"{account} should get exactly one copy"


def test_alias_precedence_tag_and_catch_all(people) -> None:
    alice, _bob, carol = people
    actions.create_alias("@example.com", ["carol@example.com"])
    actions.create_alias("bob@example.com", ["alice@example.com"])  # an exact alias overrides the account
    cases = {
        "alice@example.com": alice,
        "ALICE@Example.COM": alice,
        "alice+news@example.com": alice,
        "bob@example.com": alice,
        "bob+tag@example.com": alice,  # the alias of the untagged address still comes before its account
        "nobody@example.com": carol,
    }
    for address, expected in cases.items():
        resolution = actions.resolve_recipient(address)
        assert resolution.status is RecipientStatus.LOCAL, address
        assert resolution.account_ids == (expected.pk,), address


def test_unknown_and_remote_recipients(people) -> None:
    assert actions.resolve_recipient("nobody@example.com").status is RecipientStatus.UNKNOWN
    assert actions.resolve_recipient("someone@elsewhere.test").status is RecipientStatus.REMOTE
    report = actions.deliver(RAW, "s@remote.test", ["nobody@example.com", "x@elsewhere.test"])
    assert report.results == {"nobody@example.com": RecipientStatus.UNKNOWN, "x@elsewhere.test": RecipientStatus.REMOTE}
    assert Message.objects.count() == 0


def test_alias_to_external_address_is_reported_for_forwarding(people) -> None:
    alice, _, _ = people
    actions.create_alias("fwd@example.com", ["alice@example.com", "friend@elsewhere.test"])
    report = actions.deliver(RAW, "s@remote.test", ["fwd@example.com"])
    assert report.results == {"fwd@example.com": RecipientStatus.LOCAL}
    assert report.forward == ["friend@elsewhere.test"]
    assert len(inbox_messages(alice)) == 1


def test_alias_loops_terminate(people) -> None:
    actions.create_alias("loop1@example.com", ["loop2@example.com"])
    actions.create_alias("loop2@example.com", ["loop1@example.com"])
    assert actions.resolve_recipient("loop1@example.com").status is RecipientStatus.UNKNOWN


def test_quota_refuses_when_full_and_keeps_other_recipients(make_account) -> None:
    small = make_account("small@example.com", quota_bytes=len(RAW) + 100)
    roomy = make_account("roomy@example.com")
    first = actions.deliver(RAW, "s@remote.test", ["small@example.com"])
    assert first.results["small@example.com"] is RecipientStatus.LOCAL
    assert actions.resolve_recipient("small@example.com", size=len(RAW)).status is RecipientStatus.OVER_QUOTA
    second = actions.deliver(RAW, "s@remote.test", ["small@example.com", "roomy@example.com"])
    assert second.results == {
        "small@example.com": RecipientStatus.OVER_QUOTA,
        "roomy@example.com": RecipientStatus.LOCAL,
    }
    assert len(inbox_messages(small)) == 1
    assert len(inbox_messages(roomy)) == 1
    small.refresh_from_db()
    assert small.used_bytes <= small.quota_bytes


def test_a_group_that_does_not_fit_together_stores_those_that_fit_in_order(make_account) -> None:
    """The MX's group for one Inbox is reserved and charged in one statement; when the group does not fit as a
    whole, each message is charged in turn: the first two fit, the third does not, nor does a fourth message of
    the group once the third has failed (the space is gone), and no body is left behind for either."""
    sizes = [len(RAW.replace(b"<m1@", f"<m{n}@".encode())) + len(b"Return-Path: <s@remote.test>\r\n") for n in range(4)]
    small = make_account("small@example.com", quota_bytes=sizes[0] + sizes[1] + 10)
    group = [(RAW.replace(b"<m1@", f"<m{n}@".encode()), "s@remote.test", [small.address]) for n in range(4)]
    reports = actions.deliver_many(group, {small.address: actions.resolve_recipient(small.address)})
    assert [r.results[small.address] for r in reports] == [
        RecipientStatus.LOCAL,
        RecipientStatus.LOCAL,
        RecipientStatus.OVER_QUOTA,
        RecipientStatus.OVER_QUOTA,
    ]
    stored = inbox_messages(small)
    assert [m.message_id for m in stored] == ["<m0@remote.test>", "<m1@remote.test>"]
    assert stored[0].uid < stored[1].uid
    small.refresh_from_db()
    assert (small.used_bytes, small.used_messages) == (sum(m.size for m in stored), 2)
    assert MessageBody.objects.count() == 2


def test_expunge_and_delete_release_quota_and_orphaned_bodies(people) -> None:
    alice, bob, _ = people
    actions.deliver(RAW, "s@remote.test", ["alice@example.com", "bob@example.com"])
    inbox = alice.mailboxes.get(role=Role.INBOX)
    actions.set_flags(alice, inbox.pk, [1], ["\\Deleted"], actions.FlagMode.ADD)
    assert actions.expunge(alice, inbox.pk) == [1]
    alice.refresh_from_db()
    assert alice.used_bytes == 0
    assert MessageBody.objects.count() == 1, "bob's copy still uses the body"
    bob_inbox = bob.mailboxes.get(role=Role.INBOX)
    assert actions.delete_messages(bob, bob_inbox.pk, [1]) == [1]
    assert MessageBody.objects.count() == 1, "both copies wait in the recycle bin"
    assert actions.purge_recycled(retention_days=0) == 2
    assert MessageBody.objects.count() == 0


def test_flags_copy_and_move_keep_internal_date(people) -> None:
    alice, _, _ = people
    actions.deliver(RAW, "s@remote.test", ["alice@example.com"])
    inbox = alice.mailboxes.get(role=Role.INBOX)
    archive = alice.mailboxes.get(role=Role.ARCHIVE)
    changed = actions.set_flags(alice, inbox.pk, [1], ["\\Seen", "\\flagged", "$Label1"], actions.FlagMode.ADD)
    assert [actions.flag_names(m) for m in changed] == [["\\Seen", "\\Flagged", "$Label1"]]
    assert actions.set_flags(alice, inbox.pk, [1], ["\\Seen"], actions.FlagMode.ADD) == []
    original = Message.objects.get(mailbox=inbox, uid=1)
    assert actions.copy(alice, inbox.pk, [1], archive.pk) == [(1, 1)]
    assert actions.move(alice, inbox.pk, [1], archive.pk) == [(1, 2)]
    copies = list(Message.objects.filter(mailbox=archive).order_by("uid"))
    assert [m.internal_date for m in copies] == [original.internal_date] * 2
    assert all(actions.flag_names(m) == ["\\Seen", "\\Flagged", "$Label1"] for m in copies)
    assert not Message.objects.filter(mailbox=inbox).exists()
    alice.refresh_from_db()
    assert alice.used_bytes == 2 * original.size


def test_folders_create_rename_delete(people) -> None:
    alice, _, _ = people
    work = actions.create_mailbox(alice, "Work/Projects/2026")
    assert set(alice.mailboxes.filter(name__startswith="Work").values_list("name", flat=True)) == {
        "Work",
        "Work/Projects",
        "Work/Projects/2026",
    }
    uidvalidity = work.uidvalidity
    actions.rename_mailbox(alice, alice.mailboxes.get(name="Work").pk, "Jobs")
    renamed = alice.mailboxes.get(pk=work.pk)
    assert (renamed.name, renamed.uidvalidity) == ("Jobs/Projects/2026", uidvalidity)
    with pytest.raises(actions.InvalidName):
        actions.delete_mailbox(alice, alice.mailboxes.get(name="Jobs").pk)
    with pytest.raises(actions.InvalidName):
        actions.delete_mailbox(alice, alice.mailboxes.get(role=Role.INBOX).pk)
    for bad in ["", "a//b", "../x", "a/./b", "x*", "trailing/"]:
        with pytest.raises(actions.InvalidName):
            actions.create_mailbox(alice, bad)
    assert actions.normalise_folder_name("inbox") == "INBOX"


def test_replies_join_the_conversation(people) -> None:
    alice, _, _ = people
    actions.deliver(RAW, "s@remote.test", ["alice@example.com"])
    reply = RAW.replace(b"Subject: Hello there", b"Subject: Re: Hello there").replace(
        b"Message-ID: <m1@remote.test>", b"Message-ID: <m2@remote.test>\r\nIn-Reply-To: <m1@remote.test>"
    )
    unrelated = RAW.replace(b"Hello there", b"Something else").replace(b"<m1@", b"<m3@")
    actions.deliver(reply, "s@remote.test", ["alice@example.com"])
    actions.deliver(unrelated, "s@remote.test", ["alice@example.com"])
    first, second, third = inbox_messages(alice)
    assert first.thread_id == second.thread_id
    assert third.thread_id != first.thread_id


def test_crlf_size_counts_bare_line_feeds_as_crlf(people) -> None:
    alice, _, _ = people
    inbox = alice.mailboxes.get(role=Role.INBOX)
    appended = actions.append(alice, inbox.pk, b"Subject: lf\n\nline one\nline two\r\n")
    assert appended.size == 32
    assert appended.crlf_size == 35  # three bare LFs become CRLF
    delivered = Message.objects.get(pk=actions.deliver(RAW, "s@remote.test", [alice.address]).message_ids[0])
    assert delivered.crlf_size == delivered.size


def test_a_group_stores_every_message_but_the_one_the_store_refuses(people) -> None:
    alice, _, _ = people
    nested = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (n, n + 1) for n in range(105)
    )
    group = [
        (RAW.replace(b"Hello there", b"First"), "s@remote.test", [alice.address]),
        (nested, "s@remote.test", [alice.address]),
        (RAW.replace(b"Hello there", b"Third"), "s@remote.test", [alice.address]),
    ]
    first, refused, third = actions.deliver_many(group)
    assert isinstance(refused, MimeTooDeep)
    assert first.results == third.results == {alice.address: RecipientStatus.LOCAL}
    assert [m.subject for m in inbox_messages(alice)] == ["First", "Third"]
    alice.refresh_from_db()
    assert alice.used_bytes == sum(m.size for m in inbox_messages(alice))
    [alone] = actions.deliver_many([group[1]])
    assert isinstance(alone, MimeTooDeep)
    assert len(inbox_messages(alice)) == 2


def test_a_group_fills_a_mailbox_in_order_and_refuses_what_no_longer_fits(make_account) -> None:
    stored_size = len(actions.with_return_path(RAW, "s@remote.test"))
    small = make_account("small@example.com", quota_bytes=2 * stored_size + 10)
    roomy = make_account("roomy@example.com")
    group = [
        (RAW.replace(b"<m1@", b"<m%d@" % n), "s@remote.test", ["small@example.com", "roomy@example.com"])
        for n in range(3)
    ] + [(RAW.replace(b"<m1@", b"<only@"), "", ["small@example.com"])]
    first, second, third, fourth = actions.deliver_many(group)
    assert first.results["small@example.com"] is second.results["small@example.com"] is RecipientStatus.LOCAL
    assert third.results == {
        "small@example.com": RecipientStatus.OVER_QUOTA,
        "roomy@example.com": RecipientStatus.LOCAL,
    }
    assert fourth.results == {"small@example.com": RecipientStatus.OVER_QUOTA}
    assert [m.message_id for m in inbox_messages(small)] == ["<m0@remote.test>", "<m1@remote.test>"]
    assert len(inbox_messages(roomy)) == 3
    small.refresh_from_db()
    assert small.used_bytes == 2 * stored_size
    # The fourth message reached nobody: its body is not kept. The third's is, for roomy.
    assert MessageBody.objects.count() == 3
    # UIDs still ascend in the order the messages arrived.
    assert [m.uid for m in inbox_messages(roomy)] == [1, 2, 3]


def test_a_reply_in_the_same_group_joins_the_conversation(people) -> None:
    alice, _, _ = people
    # Only References ties the reply to the first message (its subject says nothing).
    reply = RAW.replace(b"Subject: Hello there", b"Subject: Quick answer").replace(
        b"Message-ID: <m1@remote.test>", b"Message-ID: <m2@remote.test>\r\nReferences: <m1@remote.test>"
    )
    unrelated = RAW.replace(b"Hello there", b"Something else").replace(b"<m1@", b"<m3@")
    actions.deliver_many([(raw, "s@remote.test", [alice.address]) for raw in (RAW, reply, unrelated)])
    first, second, third = inbox_messages(alice)
    assert first.thread_id == second.thread_id
    assert third.thread_id != first.thread_id


def test_a_group_delivers_as_rcpt_resolved(people) -> None:
    """deliver_many uses the RCPT-time answers it is given: an alias added in between applies from the next
    message on (the lookup is not repeated at DATA)."""
    alice, bob, _ = people
    at_rcpt = {"bob@example.com": actions.resolve_recipient("bob@example.com")}
    actions.create_alias("bob@example.com", ["alice@example.com"])
    actions.deliver_many([(RAW, "s@remote.test", ["bob@example.com"])], at_rcpt)
    assert (len(inbox_messages(bob)), len(inbox_messages(alice))) == (1, 0)
    actions.deliver_many([(RAW, "s@remote.test", ["bob@example.com"])])
    assert (len(inbox_messages(bob)), len(inbox_messages(alice))) == (1, 1)


def test_a_recipient_removed_between_rcpt_and_data_gets_the_sender_a_dsn(people, make_account) -> None:
    alice, bob, _ = people
    dave = make_account("dave@example.com")
    at_rcpt = {address: actions.resolve_recipient(address) for address in (alice.address, bob.address)}
    bob.delete()
    raw = RAW.replace(b"From: Sender <sender@remote.test>", b"From: dave@example.com")
    [report] = actions.deliver_many([(raw, dave.address, [alice.address, "bob@example.com"])], at_rcpt)
    assert report.results == {alice.address: RecipientStatus.LOCAL, "bob@example.com": RecipientStatus.UNKNOWN}
    assert len(inbox_messages(alice)) == 1
    [dsn] = inbox_messages(dave)
    assert b"Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: 5.1.1" in bytes(dsn.body.raw)


def counted(account) -> tuple[int, int]:
    """The account's message counter, and its messages counted."""
    account.refresh_from_db()
    return account.used_messages, Message.objects.filter(account=account).count()


def test_the_message_counter_follows_every_action_and_the_limit_refuses_like_the_storage_quota(people) -> None:
    alice, bob, _ = people
    actions.update_account(alice, quota_messages=4)
    inbox = alice.mailboxes.get(role=Role.INBOX).pk
    archive = alice.mailboxes.get(role=Role.ARCHIVE).pk
    actions.deliver(RAW, "s@remote.test", ["alice@example.com", "bob@example.com"])  # one group, two accounts
    actions.append(alice, inbox, RAW)
    assert counted(alice) == (2, 2)
    assert counted(bob) == (1, 1)
    assert actions.copy(alice, inbox, [1, 2], archive) == [(1, 1), (2, 2)]
    assert counted(alice) == (4, 4)
    # Full by number of messages, with room in bytes: the same refusals as a full storage quota.
    assert actions.resolve_recipient("alice@example.com", size=len(RAW)).status is RecipientStatus.OVER_QUOTA
    report = actions.deliver(RAW, "s@remote.test", ["alice@example.com", "bob@example.com"])
    assert report.results["alice@example.com"] is RecipientStatus.OVER_QUOTA
    with pytest.raises(actions.OverQuota):
        actions.append(alice, inbox, RAW)
    with pytest.raises(actions.OverQuota):
        actions.copy(alice, inbox, [1], archive)
    actions.move(alice, inbox, [1], archive)
    assert counted(alice) == (4, 4)
    actions.set_flags(alice, archive, [1, 2], ["\\Deleted"], actions.FlagMode.ADD)
    assert actions.expunge(alice, archive) == [1, 2]
    assert counted(alice) == (2, 2)
    actions.delete_messages(alice, archive, [3])
    assert counted(alice) == (1, 1)
    recycled = list(alice.recycled.values_list("pk", flat=True))
    actions.restore(alice, recycled)  # back in, counted again
    assert counted(alice) == (4, 4)
    actions.delete_mailbox(alice, archive)
    assert counted(alice) == (1, 1)
    assert counted(bob) == (2, 2)


def test_the_migration_counts_existing_messages(people) -> None:
    migration = importlib.import_module("mailboxes.migrations.0018_account_message_count")
    alice, bob, carol = people
    actions.deliver(RAW, "s@remote.test", ["alice@example.com", "bob@example.com"])
    actions.deliver(RAW, "s@remote.test", ["alice@example.com"])
    Account.objects.update(used_messages=0)
    migration.count_messages(django_apps, None)
    assert [counted(person) for person in (alice, bob, carol)] == [(2, 2), (1, 1), (0, 0)]


@pytest.mark.parametrize("notify", ["NEVER", "SUCCESS,FAILURE"])
def test_notify_decides_the_notice_of_a_delivery_from_the_mx(people, make_account, notify) -> None:
    alice, bob, _ = people
    dave = make_account("dave@example.com")
    at_rcpt = {address: actions.resolve_recipient(address) for address in (alice.address, bob.address)}
    bob.delete()
    raw = RAW.replace(b"From: Sender <sender@remote.test>", b"From: dave@example.com")
    asked = Requests(
        envid="E1",
        notify={alice.address: notify, "bob@example.com": notify},
        orcpt={"bob@example.com": "rfc822;Bob@example.com"},
    )
    actions.deliver_many([(raw, dave.address, [alice.address, "bob@example.com"])], at_rcpt, [], [asked])
    assert len(inbox_messages(alice)) == 1
    if notify == "NEVER":  # RFC 3461 4.1
        assert inbox_messages(dave) == []
        return
    [dsn] = inbox_messages(dave)
    text = bytes(dsn.body.raw)
    assert b"Original-Envelope-Id: E1\r\n" in text
    assert b"Original-Recipient: rfc822;Bob@example.com\r\nFinal-Recipient: rfc822; bob@example.com\r\n" in text
    assert b"Action: failed" in text
    assert f"Final-Recipient: rfc822; {alice.address}\r\nAction: delivered\r\nStatus: 2.0.0".encode() in text


def test_a_large_message_is_stored_compressed_with_lz4(people) -> None:
    """The body, its readable text and folded words (migrations 0021, 0027), and the text index's copy."""
    from django.db import connection

    from mailboxes.actions import text_index

    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    head, _, _ = RAW.partition(b"\r\n\r\n")
    line = "Grüße aus Köln: a line of a long message, much like the line before it.\r\n".encode()
    big = head + b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + line * 2000
    actions.deliver(big, "s@remote.test", ["alice@example.com"])
    [message] = inbox_messages(people[0])
    assert len(message.search_text) > 60_000
    assert message.search_words  # letters beyond ASCII: the folded document is kept
    assert text_index.index_text() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(raw) FROM mailboxes_messagebody WHERE id = %s", [message.body_id])
        assert cursor.fetchone() == ("lz4",)
        cursor.execute(
            "SELECT pg_column_compression(search_text), pg_column_compression(search_words) FROM mailboxes_message"
            " WHERE id = %s",
            [message.pk],
        )
        assert cursor.fetchone() == ("lz4", "lz4")
        cursor.execute(
            "SELECT pg_column_compression(text) FROM mailboxes_messagetext WHERE message_id = %s", [message.pk]
        )
        assert cursor.fetchone() == ("lz4",)
    assert bytes(message.body.raw).endswith(big)
