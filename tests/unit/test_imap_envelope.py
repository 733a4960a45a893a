"""ENVELOPE address lists in IMAP wire form (mailcore.imap_wire), with RFC 3501 7.4.2 group syntax."""

from __future__ import annotations

import pytest

from mailcore import imap_wire, mime

START = b'(NIL NIL "%s" NIL)'
END = b"(NIL NIL NIL NIL)"

CASES = [
    (b"a@example.org", b'((NIL NIL "a" "example.org"))'),
    # RFC 3501 7.4.2: a group is a start marker with the group name as mailbox, its members, an end marker.
    (b"undisclosed-recipients:;", b"(" + START % b"undisclosed-recipients" + END + b")"),
    (
        b'Team: a@x.org, "B" <b@y.org>;',
        b"(" + START % b"Team" + b'(NIL NIL "a" "x.org")("B" NIL "b" "y.org")' + END + b")",
    ),
    (
        b"x@y, G: a@b;, H: ;",
        b'((NIL NIL "x" "y")' + START % b"G" + b'(NIL NIL "a" "b")' + END + START % b"H" + END + b")",
    ),
    # An unterminated group still gets its end marker.
    (b"Team: a@x.org", b"(" + START % b"Team" + b'(NIL NIL "a" "x.org")' + END + b")"),
    # A comment is not a member of an empty group, nor an address of its own.
    (b"Friends: (nobody) ;", b"(" + START % b"Friends" + END + b")"),
    (b"(only a comment)", b"NIL"),
    # A mailbox without a domain keeps an empty host, never NIL (which would make it a group marker).
    (b"postmaster", b'((NIL NIL "postmaster" ""))'),
]


@pytest.mark.parametrize(("to", "expected"), CASES, ids=[c[0].decode() for c in CASES])
def test_to_field(to: bytes, expected: bytes) -> None:
    parsed = mime.parse_message(b"From: a@b.c\r\nTo: " + to + b"\r\nSubject: s\r\n\r\nbody\r\n")
    wire = imap_wire.envelope(parsed.envelope)
    assert wire.endswith(b" " + expected + b" NIL NIL NIL NIL)"), wire
