"""FETCH sections of the message's own header (imapd/fetch.py): which requests read the header bytes alone,
without the MIME tree, and the bytes HEADER.FIELDS and HEADER.FIELDS.NOT cut from a header block."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _line_by_line(header: bytes, section: fetch.Section) -> bytes:
    """HEADER.FIELDS and HEADER.FIELDS.NOT cut one line at a time (`fetch._header_lines`), as every block was
    cut before regular blocks had a regular expression of their own."""
    wanted = {name.lower().encode() for name in section.fields}
    keep = section.text == "HEADER.FIELDS"
    picked = [text for name, text in fetch._header_lines(header) if (name in wanted) == keep]
    return b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in picked) + b"\r\n"


@pytest.mark.parametrize(
    ("block", "regular"),
    [
        (HEADER, True),
        (HEADER.replace(b"\r\n", b"\n"), True),  # bare LF, as an APPEND may store it
        (b"A: 1\r\nB: 2\n\r\n", True),
        (b"\r\n", True),
        (b"A: 1\r\n", False),  # no empty line: a message without a body
        (b"A: 1\r\n\r\n\tb\r\n\r\n", False),  # an empty line before the last
        (b" A: 1\r\n\r\n", False),  # a continuation with nothing to continue
        (b"A: 1\rB: 2\r\n\r\n", False),  # a lone CR ends a line too
        (b"A: 1\r\n\x0bB: 2\r\n\r\n", False),  # white space bytes.strip drops from a name
    ],
)
def test_regular_header_blocks_are_cut_by_a_regular_expression(block: bytes, regular: bool) -> None:
    assert (fetch._regular_fields(block) is not None) is regular
    for spec in ("HEADER.FIELDS (subject date X-Missing a)", "HEADER.FIELDS.NOT (Received To b)"):
        section = fetch.parse_section(spec)
        assert fetch.header_section(block, section) == _line_by_line(block, section)


_PIECES = [b"From", b"from", b"FROM", b"From-X", b"X", b"A", b"b", b":", b" :", b"\x0b", b"\x0c", b" ", b"\t"]
_PIECES += [b"\r\n", b"\n", b"\r", b"value", b"\xc3\xa9", b"\r\n ", b"\r\n\t", b"\r\n\r\n"]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=30).map(b"".join),
    st.sampled_from([b"\r\n", b"\n", b""]),
    st.sampled_from(["From", "from-x a", "A X B", "b From"]),
)
def test_header_fields_cut_as_line_by_line_whatever_the_block(body: bytes, end: bytes, names: str) -> None:
    block = body + end
    for text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        section = fetch.parse_section(f"{text} ({names})")
        assert fetch.header_section(block, section) == _line_by_line(block, section)


_FIELD = st.tuples(
    st.sampled_from([b"From", b"fROM", b"From-X", b"X", b"A", b"b", b"Subject"]),
    st.sampled_from([b":", b": ", b" :", b"\t\x0b:", b"", b" ", b"-"]),
    st.sampled_from([b"", b"value", b"a: b", b"\xc3\xa9 ", b" \t"]),
    st.lists(st.sampled_from([b" more", b"\tmore", b" ", b"\t"]), max_size=2),
    st.sampled_from([b"\r\n", b"\n"]),
).map(lambda f: f[0] + f[1] + f[2] + f[4] + b"".join(line + f[4] for line in f[3]))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_FIELD, max_size=8).map(b"".join),
    st.sampled_from([b"\r\n", b"\n"]),
    st.sampled_from(["From", "from-x a", "A X B", "b From"]),
)
def test_header_fields_of_regular_blocks_cut_as_line_by_line(fields: bytes, end: bytes, names: str) -> None:
    block = fields + end
    assert fetch._regular_fields(block) is not None
    for text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        section = fetch.parse_section(f"{text} ({names})")
        assert fetch.header_section(block, section) == _line_by_line(block, section)
