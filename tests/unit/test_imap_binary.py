"""BINARY (RFC 3516): FETCH items parsed, content decoded from its transfer encoding, literal8 in APPEND."""

from __future__ import annotations

import base64

import pytest

from imapd import fetch
from imapd.protocol import Atom, Command, ParseError, parse_command
from mailcore.mime import parse_message

RAW = (
    b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe, a long line that is =\r\nsoft-broken.\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(bytes(range(256)))
    + b"--b\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
    b"--b--\r\n"
)


def test_items() -> None:
    (item,) = fetch.parse([Atom("BINARY.PEEK[1.2]<0.10>")]).items
    assert (item.name, item.section.part, item.partial, item.peek) == ("BINARY", "1.2", (0, 10), True)
    (item,) = fetch.parse([Atom("binary[]")]).items
    assert (item.name, item.section.part, item.peek) == ("BINARY", "", False)
    assert fetch.parse([Atom("BINARY.SIZE[2]")]).items[0].name == "BINARY.SIZE"
    assert fetch.parse([[Atom("BINARY[1]")]]).sets_seen
    for bad in ("BINARY[1.MIME]", "BINARY[HEADER]", "BINARY[0]", "BINARY.SIZE[1]<0.5>", "BINARY[1]<0.0>"):
        with pytest.raises(ParseError):
            fetch.parse([Atom(bad)])


def test_decoded_content() -> None:
    root = parse_message(RAW).root
    assert fetch.decoded_content(RAW, root, "1") == "Grüße, a long line that is soft-broken.".encode()
    assert fetch.decoded_content(RAW, root, "2") == bytes(range(256))
    assert fetch.decoded_content(RAW, root, "") == RAW
    assert fetch.decoded_content(RAW, root, "9") is None
    with pytest.raises(fetch.UnknownTransferEncoding):
        fetch.decoded_content(RAW, root, "3")


def test_render_uses_literal8_for_nul() -> None:
    (item,) = fetch.parse([Atom("BINARY.PEEK[2]<0.4>")]).items
    message = fetch.MessageData(1, [], None, 0, decoded={"2": bytes(range(256))})  # type: ignore[arg-type]
    rendered = fetch.render(1, message, fetch.Request([item]), include_uid=False, include_flags=False)
    assert rendered == b"* 1 FETCH (BINARY[2]<0> ~{4}\r\n\x00\x01\x02\x03)\r\n"
    message.decoded["2"] = b"text"
    assert b"BINARY[2]<0> {4}\r\ntext" in fetch.render(
        1, message, fetch.Request([item]), include_uid=False, include_flags=False
    )


def test_append_literal8() -> None:
    command = parse_command([b"a APPEND INBOX ~{3}", b"a\x00b", b""])
    assert command == Command("a", "APPEND", [Atom("INBOX"), b"a\x00b"])
