"""CHUNKING (RFC 3030) on the MX: BDAT chunks read by their size, however the client's bytes are split up, and
every refusal leaving the session in step with the client."""

from __future__ import annotations

import smtplib
import time

import pytest

from relay.models import OutboundMessage
from tests.conftest import PASSWORD
from tests.e2e.test_smtp_data import content_of
from tests.smtp_support import RawSession, stored

MESSAGE = b"Subject: chunks\r\n\r\n.a line starting with a dot stays as it is\r\n.\r\nBDAT 5\r\nend\r\n"


@pytest.fixture
def session(listeners, make_account, raw_smtp) -> RawSession:
    make_account("alice@example.com")
    session = raw_smtp(listeners("smtpd")["smtp"].port)
    ehlo = session.command("EHLO client.test")
    assert "250-CHUNKING" in ehlo.splitlines()
    assert "250-DSN" in ehlo.splitlines()
    assert "REQUIRETLS" not in ehlo  # RFC 8689 3: not on a session without TLS
    assert "BINARYMIME" not in ehlo
    return session


def envelope(session: RawSession) -> None:
    assert session.command("MAIL FROM:<carol@remote.test>").startswith("250")
    assert session.command("RCPT TO:<alice@example.com>").startswith("250")


def chunked(message: bytes, sizes: list[int]) -> bytes:
    """BDAT commands with their chunks, the last one marked LAST."""
    out, start = b"", 0
    for index, size in enumerate(sizes):
        last = b" LAST" if index == len(sizes) - 1 else b""
        out += b"BDAT %d%s\r\n" % (size, last) + message[start : start + size]
        start += size
    assert start == len(message)
    return out


@pytest.mark.parametrize("how", ["each chunk waits for its reply", "pipelined at once", "in 7-byte pieces"])
def test_chunks_are_stored_exactly(session, how):
    envelope(session)
    sizes = [10, 0, 25, len(MESSAGE) - 35]
    if how == "each chunk waits for its reply":
        start = 0
        for size in sizes[:-1]:
            reply = session.command(b"BDAT %d\r\n" % size + MESSAGE[start : start + size] + b"NOOP")
            assert reply == f"250 2.0.0 {size} octets received"
            assert session.reply().startswith("250 ")  # the NOOP's: the chunk ended where its size said
            start += size
        session.send(b"BDAT %d LAST\r\n" % sizes[-1] + MESSAGE[start:])
    else:
        wire = chunked(MESSAGE, sizes)
        if how == "pipelined at once":
            session.send(wire)
        else:
            for start in range(0, len(wire), 7):
                session.send(wire[start : start + 7])
                time.sleep(0.001)
        for size in sizes[:-1]:
            assert session.reply() == f"250 2.0.0 {size} octets received"
    assert session.reply().startswith("250 2.0.0 ")  # the message's reply, after it is stored
    assert session.command("NOOP").startswith("250")  # nothing of the chunks was read as a command
    [raw] = stored("alice@example.com")
    assert content_of(raw) == MESSAGE


def test_empty_last_chunk_and_a_second_transaction(session):
    envelope(session)
    session.send(b"BDAT 17\r\nSubject: one\r\n\r\nx")
    assert session.reply() == "250 2.0.0 17 octets received"
    assert session.command("BDAT 0 last").startswith("250 2.0.0 ")
    envelope(session)
    assert session.command(b"DATA").startswith("354")  # DATA again in the next transaction
    assert session.command(b"Subject: two\r\n\r\ny\r\n.").startswith("250 2.0.0 ")
    assert [content_of(raw) for raw in stored("alice@example.com")] == [
        b"Subject: one\r\n\r\nx",
        b"Subject: two\r\n\r\ny\r\n",
    ]


def test_refused_chunks_are_read_and_dropped(session):
    # Before MAIL and RCPT: 503, and the chunk (which looks like commands) is consumed, not run.
    looks_like_commands = b"MAIL FROM:<x@y.test>\r\nRSET\r\n"
    session.send(b"BDAT %d\r\n" % len(looks_like_commands) + looks_like_commands)
    assert session.reply() == "503 5.5.1 Error: need RCPT command"
    assert session.command("MAIL FROM:<carol@remote.test>").startswith("250")
    session.send(b"BDAT 4 LAST\r\nabcd")
    assert session.reply() == "503 5.5.1 Error: need RCPT command"
    assert session.command("RCPT TO:<alice@example.com>").startswith("250")
    assert session.command("NOOP").startswith("250")
    assert stored("alice@example.com") == []


def test_data_after_bdat_is_refused(session):
    envelope(session)
    session.send(b"BDAT 3\r\nabc")
    assert session.reply() == "250 2.0.0 3 octets received"
    assert session.command("DATA") == "503 5.5.1 DATA cannot follow BDAT in one transaction"  # RFC 3030 3
    assert session.command("RSET").startswith("250")
    envelope(session)
    session.send(b"BDAT 18 LAST\r\nSubject: later\r\n\r\n")
    assert session.reply().startswith("250 2.0.0 ")
    [raw] = stored("alice@example.com")
    assert content_of(raw) == b"Subject: later\r\n\r\n"


@pytest.mark.parametrize(
    ("content", "reply"),
    [
        (b"Subject: nul\r\n\r\na\x00b\r\n", "554 5.6.0 Message contains a NUL character"),
        (b"Subject: long\r\n\r\n" + b"y" * 999 + b"\r\n", "500 5.5.2 "),
    ],
    ids=["NUL", "1001-octet line"],
)
def test_content_refused_as_after_data(session, content, reply):
    envelope(session)
    session.send(chunked(content, [7, len(content) - 7]))
    assert session.reply() == "250 2.0.0 7 octets received"
    assert session.reply().startswith(reply)
    assert session.command("NOOP").startswith("250")
    assert stored("alice@example.com") == []


def test_over_the_size_limit(listeners, make_account, raw_smtp, settings):
    settings.MAILSITE_MAX_MESSAGE_SIZE = 1000
    make_account("alice@example.com")
    session = raw_smtp(listeners("smtpd")["smtp"].port)
    session.command("EHLO client.test")
    envelope(session)
    # RFC 1870 6.1 / RFC 3030 2: 552 for the chunk that goes over; the transaction is over, so the next chunk of
    # the same message gets 503; every chunk is still read.
    session.send(b"BDAT 600\r\n" + b"a" * 600 + b"BDAT 600\r\n" + b"b" * 600 + b"BDAT 3 LAST\r\nRST")
    assert session.reply() == "250 2.0.0 600 octets received"
    assert session.reply().startswith("552 5.3.4 ")
    assert session.reply() == "503 5.5.1 Error: need RCPT command"
    envelope(session)
    session.send(b"BDAT 1000 LAST\r\n" + b"c" * 998 + b"\r\n")  # exactly the limit
    assert session.reply().startswith("250 2.0.0 ")
    [raw] = stored("alice@example.com")
    assert raw.endswith(b"c" * 998 + b"\r\n")


@pytest.mark.parametrize("command", ["BDAT", "BDAT x", "BDAT -1", "BDAT 5 FIRST", "BDAT 123456789012345678901"])
def test_unreadable_bdat_closes_the_session(session, command):
    assert session.command(command) == "501 5.5.4 Syntax: BDAT chunk-size [LAST]; closing, the chunk's end is unknown"
    assert session.closed()


def test_a_session_cut_inside_a_chunk_stores_nothing_and_a_resend_stores_once(listeners, make_account, raw_smtp):
    make_account("alice@example.com")
    port = listeners("smtpd")["smtp"].port
    first = raw_smtp(port)
    first.command("EHLO client.test")
    envelope(first)
    first.send(b"BDAT 19\r\nSubject: cut\r\n\r\nabc" + b"BDAT 100 LAST\r\n" + b"x" * 50)
    assert first.reply() == "250 2.0.0 19 octets received"
    first.close()
    second = raw_smtp(port)
    second.command("EHLO client.test")
    envelope(second)
    second.send(chunked(b"Subject: cut\r\n\r\nabc" + b"x" * 100, [19, 100]))
    assert second.reply() == "250 2.0.0 19 octets received"
    assert second.reply().startswith("250 2.0.0 ")
    [raw] = stored("alice@example.com")
    assert content_of(raw) == b"Subject: cut\r\n\r\nabc" + b"x" * 100


def test_bdat_on_submission_needs_auth_and_then_delivers_and_queues(listeners, make_account, tls_client_context):
    make_account("alice@example.com")
    make_account("bob@example.com")
    message = b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: chunked\r\n\r\nHi\r\n"
    with smtplib.SMTP("127.0.0.1", listeners("smtpd")["submission"].port) as client:
        client.starttls(context=tls_client_context)
        client.ehlo()
        assert client.has_extn("chunking")
        client.send(b"BDAT 5 LAST\r\nMAIL ")  # before AUTH: refused, and the chunk is still read
        assert client.getreply()[0] == 530
        assert client.noop()[0] == 250
        client.login("alice@example.com", PASSWORD)
        assert client.mail("alice@example.com")[0] == 250
        assert client.rcpt("bob@example.com")[0] == 250
        assert client.rcpt("dave@example.net")[0] == 250
        client.send(b"BDAT %d\r\n" % 20 + message[:20] + b"BDAT %d LAST\r\n" % (len(message) - 20) + message[20:])
        assert client.getreply() == (250, b"2.0.0 20 octets received")
        code, text = client.getreply()
        assert code == 250, text
    [raw] = stored("bob@example.com")
    assert raw.endswith(message)
    queued = OutboundMessage.objects.get()
    assert bytes(queued.raw).endswith(message)
    assert [row.address for row in queued.recipients.all()] == ["dave@example.net"]
