"""parse_message on synthetic messages: edge cases of structure, hostile input, sections and JSON."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailcore import mime
from mailcore.mime import (
    MAX_DEPTH,
    MAX_HEADER_BYTES,
    MAX_PARTS,
    Envelope,
    EnvelopeAddress,
    HeaderTooLarge,
    MimePart,
    MimeTooDeep,
    html_to_text,
    parse_message,
)

ROOT = Path(__file__).resolve().parent.parent.parent


def nested_multiparts(levels: int) -> bytes:
    """`levels` nested multipart/mixed entities (the root counts), a text part at the bottom."""
    head = [b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"]
    for i in range(1, levels):
        head.append(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i))
    head.append(b"--b%d\r\nContent-Type: text/plain\r\n\r\nbottom\r\n" % (levels - 1))
    tail = [b"--b%d--\r\n" % i for i in reversed(range(levels))]
    return b"".join(head + tail)


def test_max_depth_nesting_is_accepted() -> None:
    parsed = parse_message(nested_multiparts(MAX_DEPTH))
    section = ".".join(["1"] * MAX_DEPTH)
    leaf = parsed.root.part(section)
    assert leaf is not None
    assert leaf.content_type == "text/plain"
    assert parsed.text == "bottom"


def test_max_depth_fits_in_a_small_stack() -> None:
    """Parsing and the JSON round trip of MAX_DEPTH levels use about one frame per level, so they work even
    when the caller already sits deep in a stack (asyncio, Django) with little headroom left."""
    raw = nested_multiparts(MAX_DEPTH)
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + MAX_DEPTH + 30)
    try:
        parsed = parse_message(raw)
        rebuilt = MimePart.from_json(parsed.structure_json())
    finally:
        sys.setrecursionlimit(limit)
    assert rebuilt == parsed.root  # dataclass equality itself takes several frames per level


def test_one_level_deeper_raises() -> None:
    with pytest.raises(MimeTooDeep):
        parse_message(nested_multiparts(MAX_DEPTH + 1))


def test_nested_message_rfc822_counts_towards_depth() -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    for _ in range(MAX_DEPTH + 1):
        raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
    with pytest.raises(MimeTooDeep):
        parse_message(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: x\r\nX-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\nbody",
        b"Subject: x\r\n" + b"X-Folded: y\r\n" + b" continuation\r\n" * (MAX_HEADER_BYTES // 14) + b"\r\nbody",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Big: "
        + b"a" * MAX_HEADER_BYTES
        + b"\r\n\r\nbody\r\n--b--\r\n",
    ],
    ids=["top-level-line", "top-level-folded", "part"],
)
def test_header_too_large(raw: bytes) -> None:
    with pytest.raises(HeaderTooLarge):
        parse_message(raw)


def test_header_just_under_the_limit_and_large_headerless_body_are_fine() -> None:
    raw = b"X-Big: " + b"a" * (MAX_HEADER_BYTES - 20) + b"\r\n\r\nbody"
    assert parse_message(raw).text == "body"
    # A part without a header block whose first line is long is body, not header.
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + b"A" * (2 * MAX_HEADER_BYTES) + b"\r\n--b--"
    child = parse_message(raw).root.children[0]
    assert child.header_end == child.body_start == child.header_start
    assert child.size == 2 * MAX_HEADER_BYTES


def test_many_parts_parse_linearly_and_correctly() -> None:
    count = 5000
    chunks = [b"Subject: many\r\nContent-Type: multipart/mixed; boundary=sep\r\n\r\n"]
    for i in range(count):
        chunks.append(b"--sep\r\nContent-Type: application/octet-stream; name=f%d.bin\r\n\r\n" % i)
        chunks.append(b"payload %d\r\n" % i)
    chunks.append(b"--sep--\r\n")
    raw = b"".join(chunks)
    root = parse_message(raw).root
    assert len(root.children) == count
    for i in (0, 1, 2500, count - 1):
        child = root.children[i]
        assert child.filename == f"f{i}.bin"
        assert raw[child.body_start : child.body_end] == b"payload %d" % i


def test_parts_beyond_max_parts_are_not_split() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=s\r\n\r\n"
        + b"--s\r\n\r\nx\r\n" * (MAX_PARTS + 10)
        + b"--s\r\nContent-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\n\r\ny\r\n--t--\r\n--s--\r\n"
    )
    root = parse_message(raw).root
    assert len(root.walk()) == MAX_PARTS
    last = root.children[-1]
    assert last.body_end == len(raw)
    rest = raw[last.body_start :]
    assert rest.startswith(b"x\r\n--s\r\n\r\nx\r\n")
    assert rest.count(b"--s\r\n") == 12  # root + 9999 children leaves 11 x parts and the nested one unsplit
    assert rest.endswith(b"--t--\r\n--s--\r\n")


def test_container_without_room_for_a_child_is_a_leaf() -> None:
    inner = b"Content-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\n\r\ny\r\n--t--\r\n"
    raw = (
        b"Content-Type: multipart/mixed; boundary=s\r\n\r\n"
        + b"--s\r\n\r\nx\r\n" * (MAX_PARTS - 2)
        + b"--s\r\n"
        + inner
        + b"--s--\r\n"
    )
    root = parse_message(raw).root
    last = root.children[-1]
    assert len(root.walk()) == MAX_PARTS
    assert (last.content_type, last.children) == ("text/plain", [])
    assert raw[last.body_start : last.body_end] == b"--t\r\n\r\ny\r\n--t--"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"\n\n\n",
        b"no header at all",
        b":\r\n\r\n",
        b" leading continuation\r\n\r\nbody",
        b"Subject: only headers, no body",
        b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
        b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\nx\r\n',
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: ;;;==\r\nContent-Disposition: ;\r\nContent-Transfer-Encoding:\r\n\r\nx",
        b"Content-Type: text/plain; charset*0*=x'y'%zz; charset*9999999999=1\r\n\r\nx",
        b'Content-Type: text/plain; charset="utf-16"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!=',
        b'From: <<<@@@>>>, ((( , "unterminated\r\nTo: :;:;:;\r\nCc: a@b (nested (comment) unclosed\r\n\r\n',
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\r\nSubject: =?utf-8?b?!!!?= =?x?q?=ZZ?=\r\n\r\n",
        b"Content-Type: text/html\r\n\r\n<script><script><a<a<a<!-- unclosed",
        b"\xff\xfe\x00garbage: \x80\x81\r\n\r\n\x00\xff",
    ],
)
def test_malformed_input_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)
    for part in parsed.root.walk():
        assert 0 <= part.header_start <= part.header_end <= part.body_start <= part.body_end <= len(raw)
    assert MimePart.from_json(parsed.structure_json()) == parsed.root
    assert Envelope.from_json(parsed.envelope_json()) == parsed.envelope


def test_message_without_blank_line_is_all_header() -> None:
    raw = b"Subject: hello\r\nFrom: a@example.com\r\n"
    parsed = parse_message(raw)
    assert (parsed.root.header_end, parsed.root.body_start, parsed.root.body_end) == (len(raw), len(raw), len(raw))
    assert parsed.subject == "hello"
    assert parsed.root.lines == 0


def test_non_header_line_starts_the_body() -> None:
    raw = b"Subject: hello\r\nthis is not a header\r\nmore\r\n"
    root = parse_message(raw).root
    assert raw[root.body_start :] == b"this is not a header\r\nmore\r\n"
    assert root.header_end == root.body_start


def test_boundary_sharing_a_prefix_and_trailing_whitespace() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=abc\r\n\r\n"
        b"--abc  \r\nContent-Type: multipart/alternative; boundary=abcdef\r\n\r\n"
        b"--abcdef\r\n\r\ninner one\r\n--abcdef\r\n\r\ninner two\r\n--abcdef--\r\n"
        b"--abc\r\n\r\n--abc-not-a-delimiter\r\n--abc--x is not a close delimiter\r\n--abc--  \r\nepilogue"
    )
    root = parse_message(raw).root
    assert len(root.children) == 2
    alternative, second = root.children
    assert [raw[c.body_start : c.body_end] for c in alternative.children] == [b"inner one", b"inner two"]
    assert raw[second.body_start : second.body_end] == (b"--abc-not-a-delimiter\r\n--abc--x is not a close delimiter")


def test_outer_delimiter_ends_an_unclosed_inner_multipart() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=out\r\n\r\n"
        b"--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n--in\r\n\r\nunclosed\r\n"
        b"--out\r\n\r\nlast\r\n--out--\r\n"
    )
    root = parse_message(raw).root
    inner, last = root.children
    assert raw[inner.children[0].body_start : inner.children[0].body_end] == b"unclosed"
    assert raw[last.body_start : last.body_end] == b"last"


def test_empty_part_between_adjacent_delimiters() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\nsecond\r\n--b--\r\n"
    first, second = parse_message(raw).root.children
    assert first.header_start == first.body_end
    assert first.size == 0
    assert raw[second.body_start : second.body_end] == b"second"


def test_non_multipart_sections() -> None:
    root = parse_message(b"Subject: x\r\n\r\nbody\r\n").root
    assert root.part("1") is root
    assert root.part("2") is None
    assert root.part("1.1") is None
    assert root.part("") is None
    assert root.part("x") is None
    assert root.part("0") is None


def test_message_rfc822_sections_with_non_multipart_body() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n"
    )
    root = parse_message(raw).root
    message = root.part("2")
    assert message is not None
    assert message.content_type == "message/rfc822"
    body = root.part("2.1")
    assert body is message.children[0]
    assert raw[body.body_start : body.body_end] == b"inner body"
    assert root.part("2.2") is None
    assert root.part("2.1.1") is None


def test_top_level_message_rfc822_sections() -> None:
    raw = (
        b"Content-Type: message/rfc822\r\n\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n"
    )
    root = parse_message(raw).root
    assert root.part("1") is root
    inner = root.children[0]
    assert root.part("1.2") is inner.children[1]


def test_transfer_encoded_message_rfc822_is_a_leaf() -> None:
    raw = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5\r\n"
    root = parse_message(raw).root
    assert root.children == []
    assert root.envelope is None
    assert root.lines == 1


def test_multipart_without_boundary_is_text_plain() -> None:
    root = parse_message(b"Content-Type: multipart/mixed\r\n\r\nhello\r\n").root
    assert (root.content_type, root.params, root.children) == ("text/plain", {"charset": "us-ascii"}, [])


def test_part_fields_and_json_round_trip() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: Application/PDF; Name="a b.pdf"\r\n'
        b"Content-Transfer-Encoding: BASE64\r\n"
        b'Content-Disposition: Attachment; filename="a b.pdf"; size=3\r\n'
        b"Content-ID: <id1@x>\r\nContent-Description: A\r\n  file\r\nContent-Language: en, fr\r\n"
        b"Content-Location: http://example.com/a.pdf\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b"\r\nAAAA\r\n--b--\r\n"
    )
    part = parse_message(raw).root.children[0]
    assert part.content_type == "application/pdf"
    assert part.params == {"name": "a b.pdf"}
    assert part.encoding == "base64"
    assert part.disposition == "attachment"
    assert part.disposition_params == {"filename": "a b.pdf", "size": "3"}
    assert part.content_id == "<id1@x>"
    assert part.description == "A  file"
    assert part.language == "en, fr"
    assert part.location == "http://example.com/a.pdf"
    assert part.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ=="
    assert part.lines == 1
    data = part.to_json()
    assert data == {
        "o": [part.header_start, part.header_end, part.body_start, part.body_end],
        "t": "application/pdf",
        "p": {"name": "a b.pdf"},
        "id": "<id1@x>",
        "ds": "A  file",
        "di": "attachment",
        "la": "en, fr",
        "lo": "http://example.com/a.pdf",
        "m5": "Q2hlY2sgSW50ZWdyaXR5IQ==",
        "e": "base64",
        "dp": {"filename": "a b.pdf", "size": "3"},
        "n": 1,
    }
    assert MimePart.from_json(data) == part


def test_envelope_json_is_compact_and_round_trips() -> None:
    me = EnvelopeAddress("Me", None, "me", "example.com")
    envelope = Envelope(
        date="Mon, 1 Jan 2024 00:00:00 +0000",
        subject=None,
        from_=[me],
        sender=[me],
        reply_to=[],
        to=[EnvelopeAddress(None, None, "team", None), EnvelopeAddress(None, None, None, None)],
        cc=[EnvelopeAddress(None, "@relay", "x", "y")],
        bcc=[],
        in_reply_to=None,
        message_id="<m@x>",
    )
    data = envelope.to_json()
    assert data == {
        "d": "Mon, 1 Jan 2024 00:00:00 +0000",
        "m": "<m@x>",
        "f": [["Me", "me", "example.com"]],
        "t": [[None, "team", None], [None, None, None]],
        "c": [[None, "@relay", "x", "y"]],
        "r": [],
    }
    assert Envelope.from_json(data) == envelope


def test_references_fall_back_to_in_reply_to() -> None:
    parsed = parse_message(b"In-Reply-To: <a@x> <b@x>\r\n\r\n")
    assert (parsed.in_reply_to, parsed.references) == ("<a@x>", ["<a@x>"])
    parsed = parse_message(b"In-Reply-To: <a@x>\r\nReferences: <r1@x>\r\n  <r2@x>\r\n\r\n")
    assert (parsed.in_reply_to, parsed.references) == ("<a@x>", ["<r1@x>", "<r2@x>"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Disposition attachment counts even for text.
        (b'Content-Disposition: attachment; filename="notes.txt"\r\n\r\nx', True),
        # A non-text part with a name counts; one without does not.
        (b"Content-Type: application/pdf; name=a.pdf\r\n\r\nx", True),
        (b"Content-Type: application/octet-stream\r\n\r\nx", False),
        # Inline image referenced by cid does not count; without a Content-ID it does.
        (b"Content-Type: image/png; name=a.png\r\nContent-ID: <a@x>\r\n\r\nx", False),
        (b"Content-Type: image/png; name=a.png\r\n\r\nx", True),
        # A named forwarded message counts.
        (b"Content-Type: message/rfc822; name=fwd.eml\r\n\r\nSubject: x\r\n\r\ny", True),
    ],
)
def test_has_attachments(raw: bytes, expected: bool) -> None:
    assert parse_message(raw).has_attachments is expected


def test_text_is_capped_and_snippet_collapses_whitespace() -> None:
    parsed = parse_message(b"Subject: x\r\n\r\n" + b"word \r\n\t " * 50_000)
    assert len(parsed.text) == 64 * 1024
    assert parsed.snippet == ("word " * 40).strip()


def test_empty_plain_alternative_falls_back_to_html() -> None:
    raw = (
        b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n \r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>from html</p>\r\n--b--\r\n"
    )
    assert parse_message(raw).snippet == "from html"


def test_snippet_when_the_text_starts_with_much_whitespace() -> None:
    parsed = parse_message(b"Subject: x\r\n\r\n" + b"\r\n" * 2000 + b"late text")
    assert parsed.snippet == "late text"


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>a</p><p>b</p>", "a\nb"),
        ("<b>bold</b>, <i>it</i>", "bold, it"),
        ("<HEAD><TITLE>t</TITLE></HEAD><BODY>x &lt; y &#233;</BODY>", "x < y é"),
        ("<style>.a{}</style>visible<script>var x = '<p>';</script>", "visible"),
        ("<head><meta charset=utf-8>no closing head <br> body", "no closing head\nbody"),
        ("a <!-- comment --> b", "a b"),
        ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
        # Horizontal whitespace runs become one space; a single space stays; other spaces are kept.
        ("a \t b\tc&nbsp; d\xa0e  f", "a b c d e f"),
        ("x\u2003\u2003y", "x\u2003\u2003y"),
        # Whitespace around line breaks, and blank lines, go (CR and other spaces too).
        ("\n <div>\r\n one \r\n</div>\n\n \u2003\n two\u2003\n ", "one\ntwo"),
        ("<p> </p><p>\t</p>a", "a"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_mailcore_does_not_import_django() -> None:
    code = "import sys, mailcore.mime, mailcore.subject; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT).returncode == 0


@pytest.fixture(params=["search", "index"])
def delimiter_lookup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse with per-multipart searches (what small messages use) or with the line index built up front (what
    deeply nested large ones switch to): both must give the same offsets."""
    if request.param == "index":
        original = mime._DelimiterIndex.__init__

        def index_up_front(self: mime._DelimiterIndex, raw: bytes) -> None:
            original(self, raw)
            self.index_cost = 0

        monkeypatch.setattr(mime._DelimiterIndex, "__init__", index_up_front)


@pytest.mark.usefixtures("delimiter_lookup")
def test_nested_boundaries_prefix_outer_inside_inner_and_missing_close_delimiters() -> None:
    # Bare LF. "--ab" is no delimiter of "a" (RFC 2046 5.1.1: the line is "--" boundary then whitespace); the
    # "--a" line inside the "ab" multipart ends it, as the outer boundary's delimiter; no level is closed.
    raw = (
        b"Content-Type: multipart/mixed; boundary=a\n\n"  # 0..43
        b"--a\nContent-Type: multipart/mixed; boundary=ab\n\n"  # 43..91
        b"--ab\n\nx\n"  # 91..99
        b"--a\nContent-Type: multipart/mixed; boundary=c\n\n"  # 99..146
        b"--c\n\ny\n"  # 146..153
    )
    root = parse_message(raw).root
    assert [(p.header_start, p.header_end, p.body_start, p.body_end, p.content_type) for p in root.walk()] == [
        (0, 42, 43, 153, "multipart/mixed"),
        (47, 90, 91, 98, "multipart/mixed"),
        (96, 96, 97, 98, "text/plain"),
        (103, 145, 146, 153, "multipart/mixed"),
        (150, 150, 151, 153, "text/plain"),
    ]
    assert raw[97:98] == b"x"
    assert raw[151:153] == b"y\n"


@pytest.mark.usefixtures("delimiter_lookup")
def test_close_delimiter_of_outer_boundary_is_not_an_inner_delimiter() -> None:
    # "--a--" is both the close delimiter of "a" and a delimiter of "a--": the outer boundary takes it, so the
    # inner part ends before it (at its header's line break) and, with no delimiter of its own, is text/plain.
    raw = (
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"  # 0..45
        b'--a\r\nContent-Type: multipart/mixed; boundary="a--"\r\n'  # 45..99
        b"\r\n--a--\r\n"  # 97..106
    )
    root = parse_message(raw).root
    assert [(p.header_start, p.header_end, p.body_start, p.body_end, p.content_type) for p in root.walk()] == [
        (0, 43, 45, 106, "multipart/mixed"),
        (50, 97, 97, 97, "text/plain"),
    ]


def test_past_the_work_budget_deeper_multiparts_are_read_as_leaves() -> None:
    """Lines that all look like delimiters under many nested boundaries: the outer levels are split until finding
    delimiters has cost the budget (8 units a byte, at least 2**24), and the rest is one text/plain leaf."""
    head = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (n, n + 1) for n in range(60)
    )
    body = b"--\r\n" * (1 << 18)  # 1 MiB: indexing its lines would cost far more than the budget
    raw = head + body
    parsed = parse_message(raw)
    depth, node = 0, parsed.root
    while node.children:
        depth, node = depth + 1, node.children[0]
    assert 8 < depth < 60, depth  # each level searches about 1 MiB
    assert node.content_type == "text/plain"
    assert raw[node.body_start : node.body_end].endswith(body)
