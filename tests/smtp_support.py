"""Shared pieces of the SMTP tests: mail builders, raw-socket sessions and store readers."""

from __future__ import annotations

import ssl

from mailboxes.models import Message, MessageBody
from tests.line_client import LineClient

LOCAL = "example.com"


def mail(
    subject: str = "Hello",
    *,
    sender: str = "carol@remote.test",
    to: str = "alice@example.com",
    body: str = "Hi there.\r\n",
    extra: str = "",
) -> bytes:
    text = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@remote.test>\r\n"
        f"{extra}\r\n{body}"
    )
    return text.encode("utf-8")


class RawSession(LineClient):
    """A line-level SMTP client over a real socket, for what smtplib refuses to send (bad bytes, pipelining)."""

    def __init__(self, port: int, *, context: ssl.SSLContext | None = None, timeout: float = 10) -> None:
        super().__init__(port, context=context, timeout=timeout)
        self.greeting = self.reply()

    def reply(self) -> str:
        """One complete (possibly multi-line) reply, lines joined with newlines."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return "\n".join(line.decode("utf-8", "replace") for line in lines)

    def command(self, text: str | bytes) -> str:
        self.send((text.encode("utf-8") if isinstance(text, str) else text) + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        """True once the server has closed the connection (after any pending replies are read)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, TimeoutError):
            return True


def stored(address: str) -> list[bytes]:
    """Raw bytes of every message in an account's folders, oldest first."""
    return [
        bytes(MessageBody.objects.get(pk=m.body_id).raw)
        for m in Message.objects.filter(account__address=address).order_by("id")
    ]
