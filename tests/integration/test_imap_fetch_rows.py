"""FETCH's reading of the store (imapd.store.fetch): what each message's row becomes, on either database."""

from __future__ import annotations

import datetime

import pytest

from imapd import fetch, store
from imapd.protocol import Atom
from mailboxes import actions
from mailboxes.models import Message, Role

RAW = b"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: dated\r\n\r\nbody\r\n"


@pytest.mark.parametrize(
    ("stored", "told"),
    [
        (datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=datetime.UTC), b'"29-Feb-2024 23:59:59 +0000"'),
        (datetime.datetime(2023, 3, 5, 8, 9, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=2))), None),
        (datetime.datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=datetime.UTC), b'"31-Dec-1969 23:59:58 +0000"'),
    ],
)
def test_internaldate_is_the_stored_moment_in_utc_to_the_second_below(db, make_account, stored, told) -> None:
    alice = make_account("alice@example.com")
    inbox = alice.mailboxes.get(role=Role.INBOX).pk
    actions.append(alice, inbox, RAW, flags=["\\Seen", "\\Draft", "$Mine"], internal_date=stored)
    request = fetch.parse([[Atom("FLAGS"), Atom("INTERNALDATE")]])
    (message,) = store.fetch(alice, inbox, [(1, 1)], 1, request, False).messages
    assert fetch.internal_date(message.internal_date) == (told or b'"05-Mar-2023 06:09:10 +0000"')
    assert message.flags == ["\\Seen", "\\Draft", "$Mine"]
    rendered = fetch.render(1, message, request, include_uid=False, include_flags=False)
    assert rendered == b"* 1 FETCH (FLAGS (\\Seen \\Draft $Mine) INTERNALDATE %s)\r\n" % fetch.internal_date(
        message.internal_date
    )


def test_rows_come_as_django_reads_them(db, make_account) -> None:
    """On PostgreSQL the rows are read in binary format, past Django: each value is what Django's own reading
    gives (the MIME tree as the same dict, wire forms as the same bytes), and an empty UID set reads nothing."""
    alice = make_account("alice@example.com")
    inbox = alice.mailboxes.get(role=Role.INBOX).pk
    raw = (
        b"From: J\xc3\xbcrgen <j@remote.test>\r\nSubject: \xff\x00\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    )
    raw += b"--b\r\n\r\none\r\n--b\r\nContent-Type: text/plain; charset=latin1\r\n\r\n\xe9\r\n--b--\r\n"
    actions.append(alice, inbox, raw, flags=["\\Flagged", "$Label"], internal_date=None)
    items = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "BODY.PEEK[2]"]
    request = fetch.parse([[Atom(item) for item in items]])
    (message,) = store.fetch(alice, inbox, [(1, 1)], 1, request, False).messages
    stored = Message.objects.get(mailbox_id=inbox, uid=1)
    assert (message.uid, message.flags, message.size) == (1, ["\\Flagged", "$Label"], len(raw))
    assert (message.envelope, message.bodystructure, message.body) == (
        bytes(stored.imap_envelope),
        bytes(stored.imap_bodystructure),
        bytes(stored.imap_body),
    )
    assert message.sections == {fetch.parse_section("2"): b"\xe9"}
    request = fetch.parse([[Atom("BODY.PEEK[HEADER.FIELDS (Subject)]")]])
    (message,) = store.fetch(alice, inbox, [(1, 1)], 1, request, False).messages
    assert message.sections == {fetch.parse_section("HEADER.FIELDS (Subject)"): b"Subject: \xff\x00\r\n\r\n"}
    assert (message.flags, message.internal_date) == ([], ""), "neither FLAGS nor INTERNALDATE was asked for"
    assert store.fetch(alice, inbox, [], 1, request, False).messages == []


def test_each_message_of_the_set_once_in_uid_order_within_the_folder(db, make_account) -> None:
    """Overlapping and unordered ranges, the session's highest UID, CHANGEDSINCE; another folder's messages with
    the same UIDs stay out."""
    alice = make_account("alice@example.com")
    inbox = alice.mailboxes.get(role=Role.INBOX).pk
    actions.create_mailbox(alice, "Other")
    other = alice.mailboxes.get(name="Other").pk
    for folder in (inbox, other):
        for _ in range(6):
            actions.append(alice, folder, RAW)
    actions.set_flags(alice, inbox, [2, 5], ["\\Flagged"], actions.FlagMode.ADD)
    flagged_at = Message.objects.get(mailbox_id=inbox, uid=2).modseq
    request = fetch.parse([[Atom("FLAGS")]])

    def uids(ranges, max_uid=6, changed_since=None) -> list[int]:
        found = store.fetch(alice, inbox, ranges, max_uid, request, False, changed_since).messages
        return [message.uid for message in found]

    assert uids([(4, 6), (1, 2), (2, 4), (5, 5)]) == [1, 2, 3, 4, 5, 6]
    assert uids([(3, 9), (1, 1)], max_uid=4) == [1, 3, 4]
    assert uids([(1, 6)], changed_since=flagged_at - 1) == [2, 5]
    assert uids([(1, 6)], changed_since=flagged_at) == []
