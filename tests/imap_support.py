"""Shared pieces of the IMAP tests: a running imapd, an account, mail delivered the way SMTP delivers it."""

from __future__ import annotations

import contextlib
import imaplib
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mailboxes import actions
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
    report = actions.deliver(raw, "bob@example.org", [recipient])
    assert report.message_ids, report


class RawClient:
    """An IMAP client on a plain socket that returns every byte the server answered to each command."""

    def __init__(self, server: Server, *, login: bool = True, address: str = ADDRESS) -> None:
        self.sock = server.track(socket.create_connection((server.host, server.port), timeout=10))
        self.buffer = b""
        self.counter = 0
        self.read_until(b"\r\n")
        if login:
            self.ok(f'LOGIN {address} "{PASSWORD}"')

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, self.buffer
            self.buffer += chunk
        end = self.buffer.index(marker) + len(marker)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def send(self, text: str | bytes) -> str:
        """Send one command without waiting; returns its tag."""
        self.counter += 1
        tag = f"t{self.counter}"
        line = text.encode() if isinstance(text, str) else text
        self.sock.sendall(tag.encode() + b" " + line + b"\r\n")
        return tag

    def reply(self, tag: str) -> bytes:
        """Everything up to and including the tagged reply of `tag`."""
        data = b""
        while True:
            line = self.read_until(b"\r\n")
            data += line
            if line.startswith(tag.encode() + b" "):
                return data

    def command(self, text: str | bytes) -> bytes:
        return self.reply(self.send(text))

    def ok(self, text: str | bytes) -> bytes:
        data = self.command(text)
        last = data.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1]
        assert last.split(b" ")[1] == b"OK", data
        return data
