"""Shared pieces of the IMAP tests: a running imapd, an account, mail delivered the way SMTP delivers it."""

from __future__ import annotations

import contextlib
import imaplib
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mailboxes import services
from mailboxes.models import Account
from tests.conftest import PASSWORD

CORPUS = Path(__file__).parent / "data" / "imap"
MIME_CORPUS = Path(__file__).parent / "data" / "mime"
ADDRESS = "alice@example.test"
T = TypeVar("T", socket.socket, imaplib.IMAP4)


@dataclass
class Server:
    host: str
    port: int  # plaintext with STARTTLS
    tls_port: int  # implicit TLS
    account: Account
    ports: dict[str, int] = field(default_factory=dict)  # every started listener by name
    opened: list[socket.socket | imaplib.IMAP4] = field(default_factory=list)

    def client(self, *, login: bool = True) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        self.opened.append(client)
        if login:
            client.login(ADDRESS, PASSWORD)
        return client

    def track(self, opened: T) -> T:
        self.opened.append(opened)
        return opened

    def close(self) -> None:
        for opened in self.opened:
            if isinstance(opened, imaplib.IMAP4):
                with contextlib.suppress(OSError):
                    opened.shutdown()
            else:
                opened.close()


def start(listeners, make_account, *protocols: str) -> Server:
    account = make_account(ADDRESS)
    started = listeners("imapd", *protocols)
    ports = {name: listener.port for name, listener in started.items()}
    return Server("127.0.0.1", started["imap"].port, started["imaps"].port, account, ports)


def message(subject: str = "Hello", body: str = "Hi there.\r\n", **headers: str) -> bytes:
    lines = [
        "From: Bob Example <bob@example.org>",
        f"To: {ADDRESS}",
        f"Subject: {subject}",
        "Date: Mon, 01 Jan 2024 10:00:00 +0000",
        "Message-ID: <" + subject.replace(" ", ".") + "@example.org>",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


def deliver(raw: bytes, recipient: str = ADDRESS) -> None:
    """Store a message as SMTP ingress does."""
    report = services.deliver(raw, "bob@example.org", [recipient])
    assert report.message_ids, report
