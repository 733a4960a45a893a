"""Downgrading 8-bit header data for IMAP clients without UTF8=ACCEPT (RFC 6855 3, 5; RFC 6857 3), byte by
byte: encoded-words, ENVELOPE strings and addresses, and header blocks."""

from __future__ import annotations

import base64
import re

import pytest

from mailcore import downgrade
from mailcore.headers import decode_words
from mailcore.imap_wire import message_wire
from mailcore.mime import parse_message

HEADER = (
    "Date: Mon, 1 Dec 2026 10:00:00 +0100\r\n"
    "From: Jürgen Groß <jürgen@bücher.example>\r\n"
    'To: "Müller, Hans" <hans@münchen.example>, Team: ann@a.example, jörg@b.example;, plain@c.example\r\n'
    "Subject: Grüße aus Köln\r\n"
    "Message-ID: <ü@x>\r\n"
    "In-Reply-To: <a@b>\r\n"
    "\r\n"
).encode()
JUERGEN = "=?UTF-8?B?SsO8cmdlbiBHcm/DnyA8asO8cmdlbkBiw7xjaGVyLmV4YW1wbGU+?="


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain ASCII", "plain ASCII"),
        ("Grüße aus Köln", "=?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?="),
        # The space between two non-ASCII words is inside the encoded text: decoders drop it between words.
        ("Köln Düsseldorf", "=?UTF-8?B?S8O2bG4gRMO8c3NlbGRvcmY=?="),
        ("  über  ", "  =?UTF-8?B?w7xiZXI=?=  "),
    ],
)
def test_encoded_words(text: str, expected: str) -> None:
    assert downgrade.encoded_words(text) == expected
    assert decode_words(expected) == text


def test_encoded_words_are_at_most_75_characters_and_split_between_characters() -> None:
    text = "ü" * 100  # 200 bytes of UTF-8
    words = downgrade.encoded_phrase(text).split(" ")
    assert [len(w) for w in words] == [72, 72, 72, 72, 44]  # 22 characters (44 bytes) a word at most
    assert "".join(base64.b64decode(w[10:-2]).decode() for w in words) == text


def test_envelope() -> None:
    wire = message_wire(parse_message(HEADER + b"Hi\r\n"))[0]
    assert not wire.isascii()
    assert (
        downgrade.envelope(wire)
        == (
            b'("Mon, 1 Dec 2026 10:00:00 +0100" "=?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?="'
            # A local part in UTF-8: an empty group named by the encoded address (From, and Sender and Reply-To).
            + b' ((NIL NIL "%s" NIL)(NIL NIL NIL NIL))' % JUERGEN.encode() * 3
            # A display name encoded, a domain in A-labels, and an address inside a group left out.
            + b' (("=?UTF-8?B?TcO8bGxlciwgSGFucw==?=" NIL "hans" "xn--mnchen-3ya.example")(NIL NIL "Team" NIL)'
            b'(NIL NIL "ann" "a.example")(NIL NIL NIL NIL)(NIL NIL "plain" "c.example"))'
            # No Cc or Bcc; In-Reply-To kept; a Message-ID in UTF-8 is no longer there (RFC 6857 3.1.9).
            b' NIL NIL "<a@b>" NIL)'
        )
    )


def test_ascii_is_returned_as_it_is() -> None:
    wire = message_wire(parse_message(b"From: a@b.example\r\nSubject: hi\r\n\r\nx\r\n"))[0]
    assert downgrade.envelope(wire) is wire
    assert downgrade.header(b"Subject: hi\r\n\r\n") == b"Subject: hi\r\n\r\n"


def test_header_block() -> None:
    assert downgrade.header(HEADER) == (
        b"Date: Mon, 1 Dec 2026 10:00:00 +0100\r\n"
        b"From: %s :;\r\n"
        % JUERGEN.encode()
        + b"To: =?UTF-8?B?TcO8bGxlciwgSGFucw==?= <hans@xn--mnchen-3ya.example>, Team:\r\n"
        b" ann@a.example;, plain@c.example\r\n"
        b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?=\r\n"
        b"Downgraded-Message-ID: =?UTF-8?B?PMO8QHg+?=\r\n"
        b"In-Reply-To: <a@b>\r\n"
        b"\r\n"
    )


def test_header_folding_and_lines_without_a_field() -> None:
    block = ("Subject: " + " ".join(["Straße"] * 3 + ["and"] * 30) + "\r\n  folded\r\nnot a field \xff\r\n").encode(
        "latin-1"
    )
    block = block.replace("Straße".encode("latin-1"), "Straße".encode())
    lines = downgrade.header(block).split(b"\r\n")
    assert lines[0].startswith(b"Subject: =?UTF-8?B?U3RyYcOfZSBTdHJhw59lIFN0cmHDn2U=?= and and")
    assert all(len(line) <= 78 and line.isascii() for line in lines)
    assert lines[-2:] == [b"not a field ?", b""]
    assert re.fullmatch(rb"( and)+ folded", b"".join(lines[1:-2]))


def test_body_structure_with_a_forwarded_message() -> None:
    inner = "From: Jürgen <jürgen@example.org>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    raw = (
        b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
        b"Content-Type: text/plain\r\nContent-Description: K\xc3\xb6ln\r\n\r\nhi\r\n"
        b"--XX\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--XX--\r\n"
    )
    _, structure, body = message_wire(parse_message(raw))
    jurgen = b'((NIL NIL "=?UTF-8?B?SsO8cmdlbiA8asO8cmdlbkBleGFtcGxlLm9yZz4=?=" NIL)(NIL NIL NIL NIL))'
    envelope = b'(NIL "=?UTF-8?B?R3LDvMOfZQ==?=" %s NIL NIL NIL NIL NIL)' % b" ".join([jurgen] * 3)
    # The Content-Description as encoded-words; the message part's ENVELOPE as `envelope` gives it; the bodies
    # of a multipart still with no space between them.
    assert downgrade.body_structure(structure) == (
        b'(("text" "plain" NIL NIL "=?UTF-8?B?S8O2bG4=?=" "7BIT" 2 1 NIL NIL NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7BIT" 64 %s'
        % envelope
        + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 7 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)'
        b' "mixed" ("boundary" "XX") NIL NIL NIL)'
    )
    assert downgrade.body_structure(body) == (
        b'(("text" "plain" NIL NIL "=?UTF-8?B?S8O2bG4=?=" "7BIT" 2 1)("message" "rfc822" NIL NIL NIL "7BIT" 64 %s'
        % envelope
        + b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 7 1) 4) "mixed")'
    )
