"""SMTP smuggling: a non-CRLF end-of-data lookalike never ends a message or starts a second one."""

from __future__ import annotations

import re

import pytest

from mailboxes.models import Message
from tests.smtp_support import RawSession, stored


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"], ids=repr)
def test_no_second_message(listeners, make_account, fake_end):
    make_account("alice@example.com")
    make_account("bob@example.com")
    port = listeners("smtpd")["smtp"].port
    payload = (
        b"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: first\r\n\r\nfirst part"
        + fake_end
        + b"MAIL FROM:<mallory@remote.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
        b"From: ceo@example.com\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n"
    )
    session = RawSession(port)
    try:
        session.command("EHLO client.test")
        session.command("MAIL FROM:<carol@remote.test>")
        session.command("RCPT TO:<alice@example.com>")
        assert session.command("DATA").startswith("354")
        session.send(payload)
        assert session.reply().startswith("250 2.0.0 Ok: queued as")
        assert session.command("QUIT").startswith("221")  # no further replies were pending
    finally:
        session.close()
    assert Message.objects.count() == 1
    assert stored("bob@example.com") == []
    [raw] = stored("alice@example.com")
    assert b"MAIL FROM:<mallory@remote.test>" in raw
    # Stored with CRLF line endings only: relaying it later cannot produce an end of data either.
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", raw) is None
