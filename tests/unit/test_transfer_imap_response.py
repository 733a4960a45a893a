"""FETCH and LIST responses as imaplib hands them over (lines, and (line, literal) tuples), parsed without I/O."""

from __future__ import annotations

import datetime

import pytest

from transfer.imap_response import Fetched, Folder, ResponseError, fetches, folders, internal_date

UTC = datetime.UTC


def test_fetch_with_literal_and_items_after_it() -> None:
    body = b"Subject: x\r\n\r\n)( {3}\r\n"
    data = [
        (b'1 (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE "05-Jan-2024 09:03:07 +0100" BODY[] {%d}' % len(body), body),
        b")",
        (b"2 (UID 9 BODY[] {0}", b""),
        b' FLAGS () INTERNALDATE " 1-Feb-2020 00:00:00 -0230")',
        b"3 (FLAGS (\\Deleted))",  # an unsolicited update without UID
    ]
    assert fetches(data) == [
        Fetched(
            7,
            ["\\Seen", "$Label1"],
            datetime.datetime(2024, 1, 5, 8, 3, 7, tzinfo=UTC),
            None,
            body,
        ),
        Fetched(9, [], datetime.datetime(2020, 2, 1, 2, 30, tzinfo=UTC), None, b""),
    ]


def test_fetch_sizes_and_odd_case() -> None:
    assert fetches([b"1 (uid 3 rfc822.size 120)", b"2 (RFC822.SIZE 0 UID 4)", None]) == [
        Fetched(3, size=120),
        Fetched(4, size=0),
    ]
    assert fetches([None]) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([b"1 (UID 3"], "unbalanced '\\('"),
        ([b"1 (UID 3))"], "unbalanced '\\)'"),
        ([b"1 (UID x)"], "not a number"),
        ([b"1 (UID 1 BODY[] {5}"], "a literal announced but not received"),
        ([(b"1 (UID 1 BODY[] {5}", b"abc"), b")"], "literal of 3 bytes announced as 5"),
        ([b'1 (UID 1 INTERNALDATE "yesterday")'], "not an IMAP date-time"),
        ([b"1 (UID)"], "not a FETCH response"),
    ],
)
def test_malformed_fetch(data: list, message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        fetches(data)


def test_internal_date_needs_a_known_month() -> None:
    assert internal_date(b"31-Dec-1999 23:59:59 +0000") == datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(ResponseError):
        internal_date(b"31-Foo-1999 23:59:59 +0000")


def test_list_responses() -> None:
    data = [
        b'(\\HasNoChildren) "/" INBOX',
        b'(\\HasChildren \\Noselect) "." "[Gmail]"',
        (b'(\\Sent \\HasNoChildren) "." {16}', b"[Gmail].Sent Box"),
        b'() NIL "Entw&APw-rfe"',
        b'(\\HasNoChildren) "/" "with \\"quote\\" and \\\\"',
    ]
    assert folders(data) == [
        Folder(b"INBOX", "/", frozenset({"\\hasnochildren"})),
        Folder(b"[Gmail]", ".", frozenset({"\\haschildren", "\\noselect"})),
        Folder(b"[Gmail].Sent Box", ".", frozenset({"\\sent", "\\hasnochildren"})),
        Folder(b"Entw&APw-rfe", None, frozenset()),
        Folder(b'with "quote" and \\', "/", frozenset({"\\hasnochildren"})),
    ]
    with pytest.raises(ResponseError, match="threes"):
        folders([b'() "/"'])
