"""FETCH's reading of the store (imapd.store.fetch): what each message's row becomes, on either database."""

from __future__ import annotations

import datetime

import pytest

from imapd import fetch, store
from imapd.protocol import Atom
from mailboxes import actions
from mailboxes.models import Role

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
