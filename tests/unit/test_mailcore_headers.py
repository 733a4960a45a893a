"""Single-field decoders in mailcore.headers and base_subject in mailcore.subject."""

from __future__ import annotations

import datetime

import pytest

from mailcore.headers import (
    b64decode,
    decode_bytes,
    decode_words,
    first_msg_id,
    msg_ids,
    parse_address_list,
    parse_content_type,
    parse_date,
    parse_disposition,
    parse_params,
)
from mailcore.subject import base_subject


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?Q?a_b?=", "a b"),
        ("=?iso-8859-1?b?6Q==?=", "é"),
        # RFC 2047 6.2: whitespace between adjacent encoded words disappears, other text stays.
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?=\t \t=?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("x =?utf-8?q?a?=", "x a"),
        # A UTF-8 character split across two words is joined before decoding.
        ("=?utf-8?b?4pw=?= =?utf-8?b?iA==?=", "✈"),
        # RFC 2231 5 language suffix on the charset.
        ("=?utf-8*en?q?hi?=", "hi"),
        # Missing base64 padding, unknown charset, invalid UTF-8: best effort.
        ("=?utf-8?b?Y2Fmw6k?=", "café"),
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        ("=?utf-8?q?bad=FF?=", "bad\ufffd"),
        ("=?utf-8?x?not-an-encoding?=", "=?utf-8?x?not-an-encoding?="),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
    ],
)
def test_decode_words(encoded: str, decoded: str) -> None:
    assert decode_words(encoded) == decoded


@pytest.mark.parametrize(
    ("data", "charset", "text"),
    [
        (b"caf\xc3\xa9", "utf-8", "café"),
        (b"caf\xe9", "iso-8859-1", "café"),
        (b"caf\xc3\xa9", "iso-8859-1", "café"),  # UTF-8 mislabelled Latin-1 is sniffed
        (b"\x93quoted\x94", "us-ascii", "\u201cquoted\u201d"),  # windows-1252 smart quotes
        (b"caf\xe9", None, "café"),
        (b"caf\xe9", "no-such-charset", "café"),
        (b"caf\xe9", "base64", "café"),  # a bytes codec is not a charset
        (b"\x82\xa0", "shift_jis", "あ"),
        (b"\xc4\xe3\xba\xc3", "gb2312", "你好"),
        (b"bad\xff", "utf-8", "bad\ufffd"),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, text: str) -> None:
    assert decode_bytes(data, charset) == text


@pytest.mark.parametrize(
    ("data", "decoded"),
    [(b"YWJj", b"abc"), (b"YW\r\nJj\r\n", b"abc"), (b"YWI", b"ab"), (b"YWJjZ", b"abc"), (b"!!", b"")],
)
def test_b64decode(data: bytes, decoded: bytes) -> None:
    assert b64decode(data) == decoded


@pytest.mark.parametrize(
    ("tail", "params"),
    [
        ('; charset="utf-8"', {"charset": "utf-8"}),
        ("; CharSet=UTF-8; Format=flowed", {"charset": "UTF-8", "format": "flowed"}),
        ('; name="a;b.txt"', {"name": "a;b.txt"}),
        ('; name="quote \\" inside"', {"name": 'quote " inside'}),
        ("; name = spaced value.txt ; x=1", {"name": "spaced value.txt", "x": "1"}),
        ('; name="unterminated', {"name": "unterminated"}),
        ("charset=utf-8 format=flowed", {"charset": "utf-8 format=flowed"}),
        ("; filename*=UTF-8''%E2%82%AC.pdf", {"filename": "€.pdf"}),
        ("; filename*=utf-8'en'a%20b", {"filename": "a b"}),
        # Continuations in any order, mixing extended and plain sections (RFC 2231 3 and 4.1).
        ('; name*1="part2"; name*0="part1-"', {"name": "part1-part2"}),
        ("; name*0*=iso-8859-1''%E9; name*1*=%E9; name*2=x", {"name": "ééx"}),
        # The extended form wins over the plain one.
        ("; filename=\"fallback.txt\"; filename*=utf-8''real.txt", {"filename": "real.txt"}),
        ("; name*0*=unknown''%FF", {"name": "ÿ"}),
        (";;; ; =x; novalue; a=1", {"a": "1"}),
    ],
)
def test_parse_params(tail: str, params: dict[str, str]) -> None:
    assert parse_params(tail) == params


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", ("text/plain", {})),
        ("TEXT/HTML; charset=UTF-8", ("text/html", {"charset": "UTF-8"})),
        ('multipart/mixed;\r\n boundary="b"', ("multipart/mixed", {"boundary": "b"})),
        ("text / plain ;charset=x", ("text/plain", {"charset": "x"})),
        (None, ("text/plain", {"charset": "us-ascii"})),
        ("text", ("text/plain", {"charset": "us-ascii"})),
        ("", ("text/plain", {"charset": "us-ascii"})),
    ],
)
def test_parse_content_type(value: str | None, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_content_type(value) == expected


def test_parse_disposition() -> None:
    assert parse_disposition('Attachment; filename="x.pdf"') == ("attachment", {"filename": "x.pdf"})
    assert parse_disposition("  ") == (None, {})


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a@example.com", [("mailbox", "", "a", "example.com")]),
        ("John Doe <john@example.com>", [("mailbox", "John Doe", "john", "example.com")]),
        ('"Doe, John" <john@example.com>', [("mailbox", "Doe, John", "john", "example.com")]),
        ('"A \\"B\\"" <a@x>', [("mailbox", 'A "B"', "a", "x")]),
        ("John  Q.  Public <jqp@x>", [("mailbox", "John Q. Public", "jqp", "x")]),
        ("john@example.com (John Doe)", [("mailbox", "John Doe", "john", "example.com")]),
        ("John (comment) <j@x>", [("mailbox", "John", "j", "x")]),
        ("a@b (outer (nested) comment)", [("mailbox", "outer (nested) comment", "a", "b")]),
        # Missing angle brackets.
        ("John Doe john@example.com", [("mailbox", "John Doe", "john", "example.com")]),
        ("john @ example.com", [("mailbox", "", "john", "example.com")]),
        ("<john@example.com", [("mailbox", "", "john", "example.com")]),
        ("<@relay1,@relay2:u@h>", [("mailbox", "", "u", "h")]),
        ('"john doe"@example.com', [("mailbox", "", '"john doe"', "example.com")]),
        ("u@[192.0.2.1]", [("mailbox", "", "u", "[192.0.2.1]")]),
        ("Jörg <jörg@exämple.de>", [("mailbox", "Jörg", "jörg", "exämple.de")]),
        ("=?utf-8?q?Ren=C3=A9e?= <r@x>", [("mailbox", "=?utf-8?q?Ren=C3=A9e?=", "r", "x")]),
        ("a@x, , b@y,", [("mailbox", "", "a", "x"), ("mailbox", "", "b", "y")]),
        ("a@x; b@y", [("mailbox", "", "a", "x"), ("mailbox", "", "b", "y")]),
        ("postmaster", [("mailbox", "", "postmaster", None)]),
        ("<>", []),
        ("", []),
        (
            "Team: a@x, B <b@y>;, c@z",
            [
                ("group", "Team", "", None),
                ("mailbox", "", "a", "x"),
                ("mailbox", "B", "b", "y"),
                ("end", "", "", None),
                ("mailbox", "", "c", "z"),
            ],
        ),
        ("undisclosed-recipients:;", [("group", "undisclosed-recipients", "", None), ("end", "", "", None)]),
        ("Open: a@x", [("group", "Open", "", None), ("mailbox", "", "a", "x"), ("end", "", "", None)]),
    ],
)
def test_parse_address_list(value: str, items: list[tuple[str, str, str, str | None]]) -> None:
    assert parse_address_list(value) == items


def test_msg_ids() -> None:
    assert msg_ids("<a@x>\r\n <b@x> junk <c @x>") == ["<a@x>", "<b@x>", "<c@x>"]
    assert first_msg_id("Your message <m@x> of today") == "<m@x>"
    assert first_msg_id("bare@x") == "<bare@x>"
    assert first_msg_id("   ") == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 1 Jul 2003 10:52:37 +0200", datetime.datetime(2003, 7, 1, 8, 52, 37, tzinfo=datetime.UTC)),
        ("1 Jul 03 10:52 GMT", datetime.datetime(2003, 7, 1, 10, 52, tzinfo=datetime.UTC)),
        ("Tue, 1 Jul 2003 10:52:37 -0000", datetime.datetime(2003, 7, 1, 10, 52, 37, tzinfo=datetime.UTC)),
        ("Tue, 1 Jul 2003 10:52:37", datetime.datetime(2003, 7, 1, 10, 52, 37, tzinfo=datetime.UTC)),
        ("garbage", None),
        ("", None),
        ("Tue, 1 Jul 2003 10:52:37 +9999", None),
        ("Tue, 31 Feb 2003 10:52:37 +0000", None),
        ("Tue, 1 Jul 99999999999999999999 10:52:37 +0000", None),
    ],
)
def test_parse_date(value: str, expected: datetime.datetime | None) -> None:
    parsed = parse_date(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE: re: Fwd: FW: Hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("Re: Re[3]: [list] Re: Hello", "hello"),
        ("Regarding: Hello", "regarding: hello"),
        ("Re [2]: Hello", "hello"),
        ("[list] Re: Hello", "hello"),
        ("Re: [list] Hello", "hello"),
        ("[list]", "[list]"),
        ("[a][b] Hello", "hello"),
        ("Hello (fwd)", "hello"),
        ("Hello (fwd) (FWD)  ", "hello"),
        ("[Fwd: Re: Hello]", "hello"),
        ("[fwd: [fwd: Hello (fwd)]]", "hello"),
        ("  Hello \t  World  ", "hello world"),
        ("Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?=", "grüsse"),
        ("Re:", ""),
        ("", ""),
    ],
)
def test_base_subject(subject: str, base: str) -> None:
    assert base_subject(subject) == base
