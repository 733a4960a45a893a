"""IDLE push and concurrent sessions: each session sees the others' new mail, flag changes and expunges."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Iterator

import imapclient
import pytest

from mailboxes.models import Message
from tests.conftest import PASSWORD
from tests.imap_support import ADDRESS, Server, deliver, message, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def imapclient_for(server: Server) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    server.track(client._imap)
    client.login(ADDRESS, PASSWORD)
    return client


def test_two_sessions_see_each_others_changes(server: Server) -> None:
    deliver(message("one"))
    deliver(message("two"))
    first, second = server.client(), server.client()
    first.select("INBOX")
    second.select("INBOX")
    second.untagged_responses.clear()
    first.store("1", "+FLAGS", "(\\Flagged)")
    deliver(message("three"))
    second.noop()
    assert second.untagged_responses.pop("EXISTS") == [b"3"]
    assert second.untagged_responses.pop("FETCH") == [b"1 (UID 1 FLAGS (\\Flagged))"]
    first.store("2", "+FLAGS", "(\\Deleted)")
    first.expunge()
    # During FETCH without UID an EXPUNGE must not be sent (RFC 3501 7.4.1): message 3 keeps its number and
    # the expunged message 2 simply returns no data.
    _, data = second.fetch("1:3", "(UID)")
    assert [d for d in data if b"UID" in d] == [b"1 (UID 1)", b"3 (UID 3)"]
    assert "EXPUNGE" not in second.untagged_responses
    second.noop()
    assert second.untagged_responses.pop("EXPUNGE") == [b"2"]
    _, data = second.fetch("1:*", "(UID)")
    assert [d for d in data if b"UID" in d] == [b"1 (UID 1)", b"2 (UID 3)"]


def test_idle_reports_new_mail_flags_and_expunge(server: Server) -> None:
    deliver(message("one"))
    watcher = imapclient_for(server)
    watcher.select_folder("INBOX")
    actor = server.client()
    actor.select("INBOX")
    watcher.idle()
    deliver(message("two"))
    assert (2, b"EXISTS") in watcher.idle_check(timeout=5)
    actor.store("1", "+FLAGS", "(\\Seen)")
    responses = watcher.idle_check(timeout=5)
    # The watcher selected first, so message 1 is \\Recent to it (RFC 3501 2.3.2).
    assert (1, b"FETCH", (b"UID", 1, b"FLAGS", (b"\\Seen", b"\\Recent"))) in responses
    actor.store("1", "+FLAGS", "(\\Deleted)")
    actor.expunge()
    seen: list = []
    deadline = time.monotonic() + 5
    while (1, b"EXPUNGE") not in seen and time.monotonic() < deadline:
        seen += watcher.idle_check(timeout=1)
    assert (1, b"EXPUNGE") in seen
    watcher.idle_done()
    assert watcher.noop()[0] == b"NOOP completed"


def test_idle_needs_done(server: Server) -> None:
    sock = server.track(socket.create_connection((server.host, server.port), timeout=10))
    sock.recv(4096)
    sock.sendall(b'l LOGIN %s "%s"\r\na IDLE\r\n' % (ADDRESS.encode(), PASSWORD.encode()))
    received = b""
    while b"+ idling" not in received:
        received += sock.recv(4096)
    sock.sendall(b"NOPE\r\nb NOOP\r\n")
    while b"b OK" not in received:
        received += sock.recv(4096)
    assert b"a BAD Expected DONE" in received


def test_idle_push_within_a_second_of_smtp_delivery(listeners, make_account) -> None:
    server = start(listeners, make_account, "smtpd")
    try:
        smtp_port = server.ports["smtp"]
        watcher = imapclient_for(server)
        watcher.select_folder("INBOX")
        watcher.idle()
        with smtplib.SMTP(server.host, smtp_port, timeout=10) as smtp:
            smtp.ehlo("client.example.org")
            smtp.mail("bob@example.org")
            smtp.rcpt(ADDRESS)
            code, _ = smtp.data(message("pushed"))
            accepted = time.monotonic()
            assert code == 250
            responses = watcher.idle_check(timeout=5)
            pushed = time.monotonic()
        assert (1, b"EXISTS") in responses
        assert pushed - accepted < 1.0, f"IDLE reported the message {pushed - accepted:.3f}s after the 250"
        watcher.idle_done()
        assert Message.objects.filter(subject="pushed").exists()
    finally:
        server.close()
