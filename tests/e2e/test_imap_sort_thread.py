"""SORT and THREAD (RFC 5256) over a real imapd, on mail delivered as SMTP delivers it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.imap_support import RawClient, Server, deliver, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def mail(msgid: str, subject: str, date: str, sender: str, refs: str = "", body: str = "x\r\n") -> bytes:
    headers = [
        f"From: {sender}",
        "To: alice@example.test",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: <{msgid}@example.org>",
    ]
    if refs:
        headers.append("References: " + " ".join(f"<{r}@example.org>" for r in refs.split()))
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


@pytest.fixture
def client(server: Server) -> RawClient:
    deliver(mail("a", "Plans", "Mon, 01 Jan 2024 10:00:00 +0000", "zoe@example.org"))
    deliver(mail("b", "Re: Plans", "Tue, 02 Jan 2024 10:00:00 +0000", "adam@example.org", "a", "y" * 500))
    deliver(mail("c", "Other", "Sun, 31 Dec 2023 10:00:00 +0000", "Mia@example.org"))
    deliver(mail("d", "Re: Plans", "Wed, 03 Jan 2024 10:00:00 +0000", "mia@example.org", "a b"))
    deliver(mail("e", "Re: Plans", "Thu, 04 Jan 2024 10:00:00 +0000", "bob@example.org", "a"))
    client = RawClient(server)
    client.ok("SELECT INBOX")
    return client


def test_sort(client: RawClient) -> None:
    assert b"SORT" in client.ok("CAPABILITY")
    assert b"* SORT 3 1 2 4 5\r\n" in client.ok("SORT (DATE) UTF-8 ALL")
    assert b"* SORT 5 4 2 1 3\r\n" in client.ok("UID SORT (REVERSE DATE) UTF-8 ALL")
    assert b"* SORT 3 1 2 4 5\r\n" in client.ok("SORT (SUBJECT) US-ASCII ALL")
    assert b"* SORT 2 5 3 4 1\r\n" in client.ok("SORT (FROM) UTF-8 ALL")
    assert b"* SORT 2 1\r\n" in client.ok("SORT (REVERSE SIZE) UTF-8 OR 1 2")
    assert b" BAD " in client.command("SORT (COLOUR) UTF-8 ALL")


def test_thread(client: RawClient) -> None:
    assert b"* THREAD (3)(1 (2 4)(5))\r\n" in client.ok("THREAD REFERENCES UTF-8 ALL")
    assert b"* THREAD (3)(1 (2)(4)(5))\r\n" in client.ok("UID THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert b"* THREAD (1 5)\r\n" in client.ok("THREAD REFERENCES UTF-8 NOT FROM mia NOT FROM adam")
    assert b"* THREAD\r\n" in client.ok("THREAD REFERENCES UTF-8 SUBJECT nothing-like-this")
