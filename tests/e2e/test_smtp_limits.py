"""Session limits: deadlines, per-IP connections, error limit and message size."""

from __future__ import annotations

import select
import smtplib
import socket
import time

import pytest
from django.conf import settings as django_settings

from smtpd import server
from tests.smtp_support import mail, stored


@pytest.fixture
def start(listeners, make_account, settings):
    """Start the MX with some settings changed: start(MAILSITE_SMTP_MAX_ERRORS=3) -> port."""
    make_account("alice@example.com")

    def start_with(**overrides) -> int:
        for name, value in overrides.items():
            setattr(settings, name, value)
        return listeners("smtpd")["smtp"].port

    return start_with


def test_idle_client_gets_421(start, raw_smtp):
    session = raw_smtp(start(MAILSITE_SMTP_COMMAND_TIMEOUT=0.5))
    session.command("EHLO client.test")
    assert session.reply().startswith("421 4.4.2 ")
    assert session.closed()


def test_trickling_command_line_hits_the_deadline(start, raw_smtp):
    session = raw_smtp(start(MAILSITE_SMTP_LINE_DEADLINE=0.6))
    session.command("EHLO client.test")
    began = time.monotonic()
    # One byte every 50 ms keeps the connection busy but never completes a line.
    while not select.select([session.sock], [], [], 0.05)[0] and time.monotonic() - began < 5:
        session.send(b"N")
    assert time.monotonic() - began < 3
    assert session.reply().startswith("421 4.4.2 ")


def test_silence_inside_data_gets_421(start, raw_smtp):
    session = raw_smtp(start(MAILSITE_SMTP_DATA_BLOCK_TIMEOUT=0.5))
    session.command("EHLO client.test")
    session.command("MAIL FROM:<carol@remote.test>")
    session.command("RCPT TO:<alice@example.com>")
    assert session.command("DATA").startswith("354")
    session.send(b"Subject: half a message\r\n")
    assert session.reply().startswith("421 4.4.2 ")
    assert session.closed()
    assert stored("alice@example.com") == []


def test_per_ip_connection_limit(start, raw_smtp):
    port = start(MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP=2)
    first, second = raw_smtp(port), raw_smtp(port)
    third = raw_smtp(port)
    assert first.greeting.startswith("220 ")
    assert second.greeting.startswith("220 ")
    assert third.greeting.startswith("421 4.7.0 ")
    assert third.closed()
    first.command("QUIT")
    assert first.closed()
    time.sleep(0.1)
    assert raw_smtp(port).greeting.startswith("220 ")


def test_a_quit_with_an_argument_keeps_the_session_counted(start, raw_smtp):
    """A "QUIT x" gets 501 and the session goes on (RFC 5321 4.1.1.10: QUIT takes no argument), so it still counts
    against its client's limit; the QUIT that ends it frees its place."""
    port = start(MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP=1)
    first = raw_smtp(port)
    assert first.command("QUIT now").startswith("501 ")
    time.sleep(0.1)
    assert raw_smtp(port).greeting.startswith("421 4.7.0 ")
    assert first.command("NOOP").startswith("250 ")
    assert first.command("QUIT").startswith("221 ")
    assert first.closed()
    time.sleep(0.1)
    assert raw_smtp(port).greeting.startswith("220 ")


def test_error_limit(start, raw_smtp):
    session = raw_smtp(start(MAILSITE_SMTP_MAX_ERRORS=3))
    session.command("EHLO client.test")
    assert session.command("RCPT TO:<alice@example.com>").startswith("503 ")
    assert session.command("MAIL FROM:<a\x00b@remote.test>").startswith("501 ")
    assert session.command("DATA").startswith("503 ")
    assert session.reply() == "421 4.7.0 Too many errors, closing connection"
    assert session.closed()


def test_declared_size_over_the_limit(start):
    with smtplib.SMTP("127.0.0.1", start()) as client:
        client.ehlo()
        code, text = client.mail("carol@remote.test", [f"SIZE={django_settings.MAILSITE_MAX_MESSAGE_SIZE + 1}"])
    assert (code, text[:5]) == (552, b"5.3.4")


@pytest.mark.slow
def test_25_mib_accepted_and_larger_refused(start):
    limit = django_settings.MAILSITE_MAX_MESSAGE_SIZE
    assert limit == 25 * 1024 * 1024
    head = mail("big", body="")
    line = b"a" * 998 + b"\r\n"
    fits = head + line * ((limit - len(head)) // len(line))
    fits += b"b" * (limit - len(fits) - 2) + b"\r\n"
    assert len(fits) == limit
    with smtplib.SMTP("127.0.0.1", start()) as client:
        client.sendmail("carol@remote.test", ["alice@example.com"], fits)
        # No SIZE declared: the limit is enforced while reading DATA.
        client.mail("carol@remote.test")
        client.rcpt("alice@example.com")
        code, text = client.data(fits + line)
        assert (code, text[:5]) == (552, b"5.3.4")
        assert client.noop()[0] == 250
    [raw] = stored("alice@example.com")
    assert raw.endswith(fits)


def test_listener_sockets_say_tcp_so_asyncio_disables_nagle():
    # asyncio turns on TCP_NODELAY only for sockets whose proto is IPPROTO_TCP; without it every pipelined
    # RCPT reply waited 40 ms for a delayed ACK.
    sock = server._bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
