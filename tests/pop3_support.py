"""Shared pieces of the POP3 tests: test messages, seeding through delivery, store readers, a raw client."""

from __future__ import annotations

import poplib
import ssl

from mailboxes import actions
from mailboxes.models import Mailbox, Message, Role
from tests.line_client import LineClient

ADDRESS = "alice@example.com"
SENDER = "carol@remote.test"


def text_mail(subject: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n\r\n"
    ).encode() + body


def eight_bit_mail() -> bytes:
    return (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@remote.test>\r\nTo: alice@example.com\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln.\r\n.a line starting with a dot\r\n.\r\nend\r\n"
    )


def multipart_mail() -> bytes:
    return (
        b"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n--b1\r\n'
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n--b1\r\n"
        b'Content-Type: application/octet-stream; name="x.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b"AAECAwQFBgcICQoLDA0ODw==\r\n--b1--\r\nepilogue\r\n"
    )


def large_mail(size: int = 10 * 1024 * 1024) -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
    body = line * (size // len(line))
    return text_mail("large", body)


def deliver(*raws: bytes) -> None:
    for raw in raws:
        report = actions.deliver(raw, SENDER, [ADDRESS])
        assert report.accepted == [ADDRESS]


def stored(address: str = ADDRESS) -> list[tuple[int, bytes]]:
    """(uid, stored bytes) of the Inbox, in UID order."""
    return [
        (uid, bytes(raw))
        for uid, raw in Message.objects.filter(mailbox__account__address=address, mailbox__role=Role.INBOX)
        .order_by("uid")
        .values_list("uid", "body__raw")
    ]


def inbox(address: str = ADDRESS) -> Mailbox:
    return Mailbox.objects.get(account__address=address, role=Role.INBOX)


def client(port: int, *, context: ssl.SSLContext | None = None, timeout: float = 20) -> poplib.POP3:
    if context is not None:
        return poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=timeout)
    return poplib.POP3("127.0.0.1", port, timeout=timeout)


class RawClient(LineClient):
    """POP3 over a bare socket, for pipelining and for bytes poplib will not send."""

    def __init__(self, port: int, timeout: float = 20) -> None:
        super().__init__(port, timeout=timeout)
        self.greeting = self.line()

    def multiline(self) -> list[bytes]:
        lines = []
        while (line := self.line()) != b".":
            lines.append(line)
        return lines

    def at_eof(self) -> bool:
        return self.buffer == b"" and self.sock.recv(1) == b""
