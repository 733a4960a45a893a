"""SMTP details found by a hostile client (issue 17): NUL in DATA, over-long paths and domains, CBC ciphers,
failed TLS handshakes, and sessions counted against the per-IP limit only until our side closes them."""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl

import pytest
from django.conf import settings as django_settings

from tests.smtp_support import mail, stored


@pytest.fixture
def smtp(listeners, make_account):
    make_account("alice@example.com")
    return listeners("smtpd")


def test_a_nul_byte_in_the_message_is_refused_for_good(smtp, raw_smtp, caplog) -> None:
    session = raw_smtp(smtp["smtp"].port)
    session.command("EHLO client.test")
    session.command("MAIL FROM:<carol@remote.test>")
    session.command("RCPT TO:<alice@example.com>")
    assert session.command("DATA").startswith("354")
    reply = session.command(mail("Nul", body="a\x00b\r\n") + b".")
    assert reply.startswith("554 5.6.0 ")
    assert stored("alice@example.com") == []
    assert not [record for record in caplog.records if record.exc_info], "no traceback for a client's bytes"
    assert session.command("NOOP").startswith("250"), "the session goes on"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("a" * 64 + "@" + ".".join(["b" * 63] * 3), "path"),  # 258 octets with its brackets
        ("a@" + ".".join(["d" * 63] * 4) + ".e" * 6, "domain"),  # a 267-octet domain
    ],
)
def test_mail_from_paths_over_the_rfc_limits_are_refused(smtp, raw_smtp, address, reason) -> None:
    # RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets; 4.5.3.1.2: a domain at most 255.
    session = raw_smtp(smtp["smtp"].port)
    session.command("EHLO client.test")
    reply = session.command(f"MAIL FROM:<{address}>")
    assert reply.startswith("501 5.1."), reply
    assert reason in reply
    assert session.command("RCPT TO:<alice@example.com>").startswith("503")


def test_the_longest_allowed_path_is_accepted(smtp, raw_smtp) -> None:
    address = "a" * 64 + "@" + ".".join(["b" * 63] * 2) + "." + "c" * 58 + ".de"  # 254 octets: 256 with <>
    assert len(address) == 254
    session = raw_smtp(smtp["smtp"].port)
    session.command("EHLO client.test")
    assert session.command(f"MAIL FROM:<{address}>").startswith("250")


def test_tls_offers_no_cbc_cipher(smtp, tls_client_context) -> None:
    tls_client_context.maximum_version = ssl.TLSVersion.TLSv1_2
    tls_client_context.set_ciphers("HIGH:!AESGCM:!CHACHA20:!AESCCM")  # CBC suites only
    with pytest.raises(ssl.SSLError), smtplib.SMTP_SSL("127.0.0.1", smtp["smtps"].port, context=tls_client_context):
        pass
    tls_client_context.set_ciphers("ECDHE+AESGCM")
    with smtplib.SMTP_SSL("127.0.0.1", smtp["smtps"].port, context=tls_client_context) as client:
        assert client.sock.cipher()[0].endswith("GCM-SHA256")


def test_a_failed_handshake_is_logged_without_a_traceback(smtp, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.create_connection(("127.0.0.1", smtp["smtps"].port), timeout=10) as sock:
        sock.sendall(b"EHLO client.test\r\n")  # plain text to the implicit-TLS port
        assert sock.recv(1024) == b""
    with socket.create_connection(("127.0.0.1", smtp["submission"].port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"STARTTLS\r\n")
        assert reader.readline().startswith(b"220")
        sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
        while sock.recv(1024):  # perhaps a TLS alert, then the end
            pass
    with smtplib.SMTP("127.0.0.1", smtp["smtp"].port) as client:
        assert client.noop()[0] == 250, "the listener goes on"
    assert not [record for record in caplog.records if record.exc_info], [r.getMessage() for r in caplog.records]


def test_the_default_per_ip_limit_is_postfixs_50() -> None:
    assert "MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP" not in os.environ
    assert django_settings.MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP == 50


def test_a_session_stops_counting_when_our_side_closes_it(settings, listeners, tls_client_context) -> None:
    """After QUIT, a TLS connection lingers until the client answers our close_notify; it must not hold the
    client's place meanwhile."""
    settings.MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP = 1
    port = listeners("smtpd")["smtps"].port
    first = tls_client_context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    second = None
    try:
        reader = first.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        first.sendall(b"QUIT\r\n")
        assert reader.readline().startswith(b"221 ")
        # The first connection stays open (no close_notify from us): the next session is still welcome.
        second = tls_client_context.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
        )
        assert second.makefile("rb").readline().startswith(b"220 ")
    finally:
        for sock in (first, second):
            if sock is not None:
                sock.close()


def test_commands_sent_ahead_after_helo_are_refused_unrun(smtp, raw_smtp) -> None:
    session = raw_smtp(smtp["smtp"].port)
    assert session.command("HELO client.test").startswith("250")
    session.send(b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
    assert session.reply().startswith("554 5.5.0 ")
    assert session.closed()


def test_after_ehlo_the_same_commands_may_be_pipelined(smtp, raw_smtp) -> None:
    session = raw_smtp(smtp["smtp"].port)
    assert "PIPELINING" in session.command("EHLO client.test")
    session.send(b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
    assert [session.reply()[:3] for _ in range(3)] == ["250", "250", "354"]


def test_a_helo_client_waiting_for_each_reply_is_served(smtp, raw_smtp) -> None:
    session = raw_smtp(smtp["smtp"].port)
    session.command("HELO client.test")
    assert session.command("MAIL FROM:<carol@remote.test>").startswith("250")
    assert session.command("RCPT TO:<alice@example.com>").startswith("250")
    assert session.command("DATA").startswith("354")
    assert session.command(mail("Patient") + b".").startswith("250")
    assert len(stored("alice@example.com")) == 1
