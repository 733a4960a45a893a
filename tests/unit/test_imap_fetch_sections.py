"""FETCH sections of the message's own header (imapd/fetch.py): which requests read the header bytes alone,
without the MIME tree, and the bytes HEADER.FIELDS and HEADER.FIELDS.NOT cut from a header block."""

from __future__ import annotations

import pytest

from imapd import fetch
from imapd.protocol import Atom

HEADER = (
    b"Received: from a\r\n\tby b\r\nFrom: Ann <ann@example.test>\r\nSubject: Long\r\n subject\r\n"
    b"To: bob@example.test\r\nDATE: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\n"
)


def request(*items: str) -> fetch.Request:
    return fetch.parse([[Atom(item) for item in items]])


@pytest.mark.parametrize(
    ("items", "header_only", "tree"),
    [
        (["BODY.PEEK[HEADER.FIELDS (From Subject Date)]"], True, False),
        (["FLAGS", "BODY.PEEK[HEADER]", "RFC822.HEADER"], True, False),
        (["BODY.PEEK[HEADER.FIELDS.NOT (Received)]", "ENVELOPE"], True, False),
        (["BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]"], False, True),
        (["BODY.PEEK[1.HEADER]"], False, True),
        (["BODY[]"], False, True),
        (["BINARY.PEEK[1]"], False, True),
        (["FLAGS", "ENVELOPE"], False, False),
    ],
)
def test_the_tree_is_read_only_for_sections_beyond_the_messages_header(items, header_only, tree) -> None:
    parsed = request(*items)
    assert parsed.header_only is header_only
    assert parsed.needs_structure is tree


def test_header_fields_are_cut_from_the_header_block_byte_by_byte() -> None:
    fields = fetch.parse_section("HEADER.FIELDS (subject date X-Missing)")
    assert fetch.header_section(HEADER, fields) == (
        b"Subject: Long\r\n subject\r\nDATE: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\n"
    )
    others = fetch.parse_section("HEADER.FIELDS.NOT (Received To)")
    assert fetch.header_section(HEADER, others) == (
        b"From: Ann <ann@example.test>\r\nSubject: Long\r\n subject\r\nDATE: Mon, 1 Dec 2026 10:00:00 +0000\r\n\r\n"
    )
    assert fetch.header_section(HEADER, fetch.parse_section("HEADER")) == HEADER
