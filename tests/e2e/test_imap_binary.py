"""BINARY (RFC 3516) over a real imapd: decoded parts, their sizes, literal8, and APPEND of a literal8."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from mailboxes.models import Message
from tests.imap_support import RawClient, Server, deliver, start

RAW = (
    b"From: a@example.org\r\nTo: alice@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe=\r\n!\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(bytes(range(256)))
    + b"--b\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
    b"--b--\r\n"
)


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def test_binary_fetch_and_append(server: Server) -> None:
    deliver(RAW)
    client = RawClient(server)
    assert b" BINARY" in client.ok("CAPABILITY")
    client.ok("SELECT INBOX")
    data = client.ok("FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.PEEK[1])")
    assert b"BINARY.SIZE[1] 8 BINARY.SIZE[2] 256 BINARY[1] {8}\r\n" + "Grüße!".encode() + b")" in data
    # 8-bit content goes in a literal; content holding NUL in a literal8 (RFC 3516 4.3).
    data = client.ok("FETCH 1 (BINARY.PEEK[2]<250.10>)")
    assert b"BINARY[2]<250> {6}\r\n\xfa\xfb\xfc\xfd\xfe\xff)" in data
    data = client.ok("FETCH 1 (BINARY.PEEK[2]<0.3>)")
    assert b"BINARY[2]<0> ~{3}\r\n\x00\x01\x02)" in data
    assert not Message.objects.get(uid=1).seen
    assert b" NO [UNKNOWN-CTE] " in client.command("FETCH 1 (BINARY[3])")
    client.ok("FETCH 1 (BINARY[1])")
    assert Message.objects.get(uid=1).seen
    content = b"Subject: bin\r\n\r\n8-bit \xff\xfe bytes\r\n"
    tag = client.send(b"APPEND INBOX ~{%d}" % len(content))
    assert client.read_until(b"\r\n").startswith(b"+ ")
    client.sock.sendall(content + b"\r\n")
    assert b" OK [APPENDUID " in client.reply(tag)
    assert bytes(Message.objects.get(uid=2).body.raw) == content
