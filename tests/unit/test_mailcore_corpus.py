"""parse_message over the tests/data/mime corpus: structure, byte-exact offsets and decoded summary."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from mailcore.mime import Address, Envelope, MimePart, decode_body, parse_message, part_text

CORPUS = Path(__file__).resolve().parent.parent / "data" / "mime"


def load(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def tz(hours: int) -> datetime.timezone:
    return datetime.timezone(datetime.timedelta(hours=hours))


# (file, section, content type, exact header block raw[header_start:body_start], exact body bytes)
# Bodies of parts inside a multipart end before the line break preceding the next delimiter (RFC 2046 5.1.1).
PARTS = [
    (
        "plain_ascii.eml",
        "1",
        "text/plain",
        None,
        b"Hi Bob,\r\n\r\nAre you free for lunch on Thursday at noon?\r\n\r\n-- \r\nAlice\r\n",
    ),
    (
        "latin1_8bit.eml",
        "1",
        "text/plain",
        None,
        b"Bonjour \xe0 tous,\r\nla r\xe9union de l'\xe9quipe aura lieu \xe0 Gen\xe8ve.\r\nFran\xe7ois\r\n",
    ),
    (
        "nested_related.eml",
        "1",
        "multipart/alternative",
        b'Content-Type: multipart/alternative; boundary="alt-b"\r\n\r\n',
        None,
    ),
    (
        "nested_related.eml",
        "1.1",
        "text/plain",
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        b"Thank you for your order =E2=80=94 total =E2=82=AC42.",
    ),
    ("nested_related.eml", "1.2", "multipart/related", None, None),
    (
        "nested_related.eml",
        "1.2.1",
        "text/html",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n",
        b'<html><body><p>Thank you &amp; welcome</p><img src="cid:logo@shop"></body></html>',
    ),
    (
        "nested_related.eml",
        "1.2.2",
        "image/png",
        None,
        b"iVBORw0KGgoAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8=",
    ),
    (
        "nested_related.eml",
        "2",
        "application/pdf",
        None,
        b"JVBERi0xLjQKJSBmYWtlIHBkZgolUERGLTEuNAolIGZha2UgcGRmCiVQREYtMS40CiUgZmFrZSBwZGYK",
    ),
    ("rfc2231_filename.eml", "1", "text/plain", b"Content-Type: text/plain\r\n\r\n", b"See attached."),
    ("rfc2231_filename.eml", "2", "application/vnd.ms-excel", None, b"AAECAw=="),
    (
        "encoded_word_filename.eml",
        "1",
        "text/plain",
        None,
        b"Voici le rapport d'=C3=A9t=C3=A9, une tr=C3=A8s longue ligne qui est coup=\r\n=C3=A9e.",
    ),
    ("encoded_word_filename.eml", "2", "application/octet-stream", None, b"UEsDBA=="),
    ("forward_rfc822.eml", "1", "text/plain", None, b"FYI, see below."),
    (
        "forward_rfc822.eml",
        "2",
        "message/rfc822",
        b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n",
        None,
    ),
    ("forward_rfc822.eml", "2.1", "text/plain", b"Content-Type: text/plain\r\n\r\n", b"Revenue is up."),
    ("forward_rfc822.eml", "2.2", "text/html", b"Content-Type: text/html\r\n\r\n", b"<p>Revenue is <b>up</b>.</p>"),
    ("digest.eml", "1", "text/plain", None, b"Today's Topics: 1. Hello  2. Re: Hello"),
    # A digest entry with no part header: the header block is just the blank line, its body the message.
    (
        "digest.eml",
        "2.1",
        "message/rfc822",
        b"\r\n",
        b"From: Judy <judy@example.org>\r\nSubject: Hello\r\nDate: Mon, 10 Mar 2025 10:00:00 +0000\r\n\r\nFirst post.",
    ),
    ("digest.eml", "2.1.1", "text/plain", None, b"First post."),
    ("digest.eml", "2.2.1", "text/plain", None, b"Reply text."),
    ("broken_charset.eml", "2", "text/plain", None, b"na\xefve latin-1 in utf-8"),
    ("missing_final_boundary.eml", "1", "text/plain", None, b"First part."),
    # No close delimiter: the last part runs to the end of the message.
    (
        "missing_final_boundary.eml",
        "2",
        "application/zip",
        b'Content-Type: application/zip; name="data.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
        b"UEsDBBQAAAAIAA==\r\n",
    ),
    ("bare_lf.eml", "1", "text/plain", b"Content-Type: text/plain\n\n", b"Unix line endings.\nSecond line."),
    ("bare_lf.eml", "2", "text/html", b"Content-Type: text/html\n\n", b"<div>Unix line endings.</div>"),
    ("huge_folded_header.eml", "1", "text/plain", None, b"Body after a huge header.\r\n"),
    # A multipart whose boundary never occurs is invalid and read as text/plain (RFC 2045 5.2).
    (
        "garbled_boundary.eml",
        "1",
        "text/plain",
        None,
        b"--some-other-boundary\r\nContent-Type: text/plain\r\n\r\nText that is not in a part.\r\n"
        b"--some-other-boundary--\r\n",
    ),
]


@pytest.mark.parametrize(("name", "section", "content_type", "header", "body"), PARTS)
def test_part_offsets(name: str, section: str, content_type: str, header: bytes | None, body: bytes | None) -> None:
    raw = load(name)
    part = parse_message(raw).root.part(section)
    assert part is not None
    assert part.content_type == content_type
    if header is not None:
        assert raw[part.header_start : part.body_start] == header
        assert raw[part.header_end : part.body_start] in (b"\r\n", b"\n")
    if body is not None:
        assert raw[part.body_start : part.body_end] == body
        assert part.size == len(body)


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.eml")))
def test_corpus_invariants(name: str) -> None:
    raw = load(name)
    parsed = parse_message(raw)
    root = parsed.root
    assert (root.header_start, root.body_end) == (0, len(raw))
    for part in root.walk():
        assert part.header_start <= part.header_end <= part.body_start <= part.body_end <= len(raw)
        if part.maintype == "multipart":
            assert part.children
            for before, after in zip(part.children, part.children[1:], strict=False):
                assert before.body_end < after.header_start
        elif part.content_type == "message/rfc822":
            assert len(part.children) == 1
            assert part.envelope is not None
            assert part.children[0].header_start == part.body_start
    assert MimePart.from_json(parsed.structure_json()) == root
    assert Envelope.from_json(parsed.envelope_json()) == parsed.envelope
    assert len(parsed.snippet) <= 200


def test_root_header_block_ends_with_the_blank_line() -> None:
    raw = load("plain_ascii.eml")
    root = parse_message(raw).root
    assert raw[: root.body_start].endswith(b"Content-Transfer-Encoding: 7bit\r\n\r\n")
    assert raw[root.header_end : root.body_start] == b"\r\n"
    assert root.params == {"charset": "us-ascii"}
    assert root.lines == 6


# (file, subject, from, to, date, message id, has attachments, snippet)
SUMMARIES = [
    (
        "plain_ascii.eml",
        "Lunch on Thursday?",
        [Address("Alice Example", "alice@example.com")],
        [Address("Bob", "bob@example.org")],
        datetime.datetime(2025, 3, 4, 10, 15, tzinfo=tz(1)),
        "<20250304091500.1234@example.com>",
        False,
        "Hi Bob, Are you free for lunch on Thursday at noon? -- Alice",
    ),
    # Raw 8-bit Latin-1 in Subject (not valid UTF-8) is read as windows-1252.
    (
        "latin1_8bit.eml",
        "Réunion à Genève",
        [Address("François Grégoire", "francois@example.fr")],
        [Address("", "equipe@example.fr")],
        datetime.datetime(2025, 3, 5, 14, 2, 11, tzinfo=tz(1)),
        "<abc.123@example.fr>",
        False,
        "Bonjour à tous, la réunion de l'équipe aura lieu à Genève. François",
    ),
    (
        "utf8_headers.eml",
        "Grüße aus Köln \u2013 日本語",
        [Address("Jürgen Müller", "jürgen@bücher.example")],
        [Address("Zoë Ångström", "zoe@example.se"), Address("田中", "tanaka@例え.jp")],
        datetime.datetime(2025, 3, 6, 8, 0, tzinfo=tz(9)),
        "<utf8-1@bücher.example>",
        False,
        "Schöne Grüße, 日本語のテキスト.",
    ),
    # The cid-referenced inline logo does not count; the PDF attachment does. Plain text wins the alternative.
    (
        "nested_related.eml",
        "Your order — receipt",
        [Address("Newsletter Team", "news@shop.example")],
        [Address("", "customer@example.net")],
        datetime.datetime(2025, 3, 7, 16, 45, tzinfo=tz(-5)),
        "<order-998877@shop.example>",
        True,
        "Thank you for your order — total €42.",
    ),
    (
        "rfc2231_filename.eml",
        "Rates",
        [Address("Carol", "carol@example.com")],
        [Address("Dave", "dave@example.com")],
        datetime.datetime(2025, 3, 8, 11, 0, tzinfo=datetime.UTC),
        "<rates@example.com>",
        True,
        "See attached.",
    ),
    (
        "encoded_word_filename.eml",
        "Rapport été",
        [Address("Eve", "eve@example.com")],
        [Address("", "frank@example.com")],
        datetime.datetime(2025, 3, 9, 12, 0, tzinfo=tz(1)),
        "<ew-file@example.com>",
        True,
        "Voici le rapport d'été, une très longue ligne qui est coupée.",
    ),
    # An inline, unnamed forwarded message is content, not an attachment; its text is part of the text.
    (
        "forward_rfc822.eml",
        "Fwd: Quarterly numbers",
        [Address("Grace", "grace@example.com")],
        [Address("Heidi", "heidi@example.com")],
        datetime.datetime(2025, 3, 10, 9, 30, tzinfo=datetime.UTC),
        "<fwd-1@example.com>",
        False,
        "FYI, see below. Revenue is up.",
    ),
    (
        "digest.eml",
        "Example-List Digest, Vol 12, Issue 3",
        [Address("", "list-request@lists.example.org")],
        [Address("", "subscriber@example.com")],
        datetime.datetime(2025, 3, 11, 0, 0, 1, tzinfo=datetime.UTC),
        "<digest.12.3@lists.example.org>",
        False,
        "Today's Topics: 1. Hello 2. Re: Hello First post. Reply text.",
    ),
    # Unknown charsets fall back to UTF-8 sniffing; invalid UTF-8 is replaced, never raised.
    (
        "broken_charset.eml",
        "café and broken\ufffd",
        [Address("Oscar", "oscar@example.com")],
        [Address("", "peggy@example.com")],
        datetime.datetime(2025, 3, 12, 13, 0, tzinfo=datetime.UTC),
        "<broken-cs@example.com>",
        False,
        "café au lait na\ufffdve latin-1 in utf-8 bytes codec name",
    ),
    (
        "missing_final_boundary.eml",
        "Truncated",
        [Address("Rupert", "rupert@example.com")],
        [Address("", "sybil@example.com")],
        datetime.datetime(2025, 3, 13, 13, 0, tzinfo=datetime.UTC),
        "<trunc@example.com>",
        True,
        "First part.",
    ),
    (
        "bare_lf.eml",
        "Bare LF line endings",
        [Address("Trent", "trent@example.com")],
        [Address("", "victor@example.com")],
        datetime.datetime(2025, 3, 14, 13, 0, tzinfo=datetime.UTC),
        "<bare-lf@example.com>",
        False,
        "Unix line endings. Second line.",
    ),
    (
        "huge_folded_header.eml",
        "A very long subject that is folded across two encoded words and plain text",
        [Address("Walter", "walter@example.com")],
        [Address("", "trudy@example.com")],
        datetime.datetime(2025, 3, 15, 13, 0, tzinfo=datetime.UTC),
        "<huge-header@example.com>",
        False,
        "Body after a huge header.",
    ),
    (
        "garbled_boundary.eml",
        "No boundary here",
        [Address("Xavier", "x@example.com")],
        [Address("", "y@example.com")],
        datetime.datetime(2025, 3, 17, 13, 0, tzinfo=datetime.UTC),
        "",
        False,
        "--some-other-boundary Content-Type: text/plain Text that is not in a part. --some-other-boundary--",
    ),
    (
        "html_only.eml",
        "Big sale",
        [Address("Promo", "promo@shop.example")],
        [Address("", "z@example.com")],
        datetime.datetime(2025, 3, 18, 13, 0, tzinfo=datetime.UTC),
        "<promo@shop.example>",
        False,
        "Everything \u2013 50% off today! Café & more",
    ),
]


@pytest.mark.parametrize(
    ("name", "subject", "from_", "to", "date", "message_id", "has_attachments", "snippet"), SUMMARIES
)
def test_summary(
    name: str,
    subject: str,
    from_: list[Address],
    to: list[Address],
    date: datetime.datetime,
    message_id: str,
    has_attachments: bool,
    snippet: str,
) -> None:
    parsed = parse_message(load(name))
    assert parsed.subject == subject
    assert parsed.from_ == from_
    assert parsed.to == to
    assert parsed.date == date
    assert parsed.message_id == message_id
    assert parsed.has_attachments is has_attachments
    assert parsed.snippet == snippet


def test_group_addresses_summary_and_envelope() -> None:
    parsed = parse_message(load("group_addresses.eml"))
    assert parsed.from_ == [Address("Peggy Sue", "peggy@example.com")]  # name from the comment
    assert parsed.to == [Address("Doe, John", "john@example.com"), Address("", "jane@example.com")]
    assert parsed.cc == [Address("Victor Vance", "victor@example.com"), Address("Renée", "renee@example.com")]
    assert parsed.bcc == [Address('Quoted "Nick" Name', "nick@example.com")]
    assert parsed.reply_to == [Address("", "replies@example.com")]
    assert parsed.date is None  # "garbage date"
    assert parsed.message_id == "<no-brackets@example.com>"
    assert parsed.in_reply_to == "<orig@example.com>"
    assert parsed.references == ["<orig@example.com>"]

    env = parsed.envelope
    assert env.date == "garbage date"
    assert env.message_id == "no-brackets@example.com"
    assert env.in_reply_to == "Your message of Friday <orig@example.com>"
    assert [(a.name, a.adl, a.mailbox, a.host) for a in env.to] == [
        (None, None, "Project Team", None),
        ("Doe, John", None, "john", "example.com"),
        (None, None, "jane", "example.com"),
        (None, None, None, None),
        (None, None, "undisclosed-recipients", None),
        (None, None, None, None),
    ]
    # Envelope names stay raw: encoded words are not decoded.
    assert [(a.name, a.mailbox, a.host) for a in env.cc] == [
        ("Victor Vance", "victor", "example.com"),
        ("=?utf-8?q?Ren=C3=A9e?=", "renee", "example.com"),
    ]
    assert [(a.name, a.mailbox) for a in env.sender] == [("Mailing Robot", "robot")]
    assert [(a.name, a.mailbox) for a in env.reply_to] == [(None, "replies")]


def test_envelope_defaults_sender_and_reply_to_to_from() -> None:
    env = parse_message(load("latin1_8bit.eml")).envelope
    assert env.subject == "R\xe9union \xe0 Gen\xe8ve"
    assert [(a.name, a.mailbox, a.host) for a in env.from_] == [
        ("=?ISO-8859-1?Q?Fran=E7ois_Gr=E9goire?=", "francois", "example.fr")
    ]
    assert env.sender == env.from_
    assert env.reply_to == env.from_
    assert env.cc == env.bcc == []
    assert env.in_reply_to is None


def test_envelope_raw_values_are_unfolded_not_decoded() -> None:
    parsed = parse_message(load("huge_folded_header.eml"))
    assert parsed.envelope.subject == (
        "=?utf-8?Q?A_very_long_subject_that_is_folded?= =?utf-8?Q?_across_two_encoded_words?= and plain text"
    )
    assert len(parsed.references) == 600
    assert parsed.references[0] == "<ref-0000.a1b2c3d4@thread.example.com>"
    assert parsed.in_reply_to == "<ref-0599.a1b2c3d4@thread.example.com>"


def test_message_rfc822_envelope_and_sections() -> None:
    raw = load("forward_rfc822.eml")
    root = parse_message(raw).root
    forwarded = root.part("2")
    assert forwarded is not None
    assert forwarded.envelope is not None
    assert forwarded.envelope.subject == "=?utf-8?q?Quarterly_numbers?="
    assert forwarded.envelope.message_id == "<q-numbers@example.com>"
    assert [(a.name, a.mailbox) for a in forwarded.envelope.from_] == [("Ivan", "ivan")]
    inner = forwarded.children[0]
    assert inner.content_type == "multipart/alternative"
    assert raw[inner.header_start : inner.header_start + 29] == b"From: Ivan <ivan@example.com>"
    assert raw[forwarded.body_start : forwarded.body_end].endswith(b"--inner-alt--\r\n")
    assert forwarded.lines == 17
    assert root.part("2.3") is None


def test_digest_children_default_to_message_rfc822() -> None:
    root = parse_message(load("digest.eml")).root
    digest = root.part("2")
    assert digest is not None
    assert digest.content_type == "multipart/digest"
    assert [c.content_type for c in digest.children] == ["message/rfc822", "message/rfc822"]
    first, second = digest.children
    assert first.envelope is not None
    assert first.envelope.subject == "Hello"
    assert first.children[0].params == {"charset": "us-ascii"}
    assert second.children[0].params == {"charset": "utf-8"}


def test_filenames() -> None:
    root = parse_message(load("rfc2231_filename.eml")).root
    sheet = root.part("2")
    assert sheet is not None
    assert sheet.params["name"] == "dépenses.xls"  # charset iso-8859-1 from name*=
    assert sheet.filename == "€ rates été.xls"  # three RFC 2231 sections, the last one not extended
    assert sheet.disposition == "attachment"

    root = parse_message(load("encoded_word_filename.eml")).root
    doc = root.part("2")
    assert doc is not None
    assert doc.filename == "rapport_été.docx"
    text = root.part("1")
    assert text is not None
    assert text.filename is None

    image = parse_message(load("nested_related.eml")).root.part("1.2.2")
    assert image is not None
    assert (image.filename, image.content_id, image.disposition) == ("logo.png", "<logo@shop>", "inline")


def test_decode_body_and_part_text() -> None:
    raw = load("nested_related.eml")
    root = parse_message(raw).root
    plain, image, pdf = root.part("1.1"), root.part("1.2.2"), root.part("2")
    assert plain is not None
    assert image is not None
    assert pdf is not None
    assert part_text(raw, plain) == "Thank you for your order — total €42."
    assert decode_body(raw, image) == b"\x89PNG\r\n\x1a\n" + bytes(range(48))
    assert decode_body(raw, pdf) == b"%PDF-1.4\n% fake pdf\n" * 3

    raw = load("encoded_word_filename.eml")
    text = parse_message(raw).root.part("1")
    assert text is not None
    assert part_text(raw, text) == "Voici le rapport d'été, une très longue ligne qui est coupée."

    raw = load("latin1_8bit.eml")
    assert part_text(raw, parse_message(raw).root).startswith("Bonjour à tous,\r\nla réunion")


def test_text_prefers_plain_alternative_and_strips_html() -> None:
    assert parse_message(load("nested_related.eml")).text == "Thank you for your order — total €42."
    assert parse_message(load("html_only.eml")).text == "Everything \u2013 50% off today!\nCafé & more"
    assert parse_message(load("bare_lf.eml")).text == "Unix line endings.\nSecond line."
