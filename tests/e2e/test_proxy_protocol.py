"""PROXY protocol on the SMTP, POP3, IMAP and ManageSieve listeners, spoken by a raw socket as a balancer would.

Trusted balancers (MAILSITE_PROXY_PROTOCOL_FROM) must start with a header, whose client address is then used
for the per-IP limit, throttling and the Received header; anyone else sending one is refused.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import time

import pytest

from mailboxes.models import AuthFailure
from ops import checks, proxy
from ops.targets import Target
from tests.conftest import PASSWORD
from tests.smtp_support import mail, stored

CLIENT = ("203.0.113.9", 40000)
PLAIN = base64.b64encode(f"\0alice@example.com\0{PASSWORD}".encode())
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def connect(port: int, header: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if header:
        sock.sendall(header)
    return sock


def first_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def smtp_exchange(sock: socket.socket, *lines: bytes) -> list[bytes]:
    replies = []
    for line in lines:
        sock.sendall(line + b"\r\n")
        reply = first_line(sock)
        while reply[3:4] == b"-":
            reply = first_line(sock)
        replies.append(reply)
    return replies


@pytest.fixture
def behind_balancer(settings, listeners, make_account):
    make_account("alice@example.com")
    settings.MAILSITE_PROXY_PROTOCOL_FROM = LOOPBACK
    settings.MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP = 2
    return {**listeners("smtpd"), **listeners("pop3d"), **listeners("imapd"), **listeners("managesieve")}


@pytest.mark.parametrize(
    "header",
    [proxy.v2_header(CLIENT, ("127.0.0.1", 25)), b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 25\r\n"],
    ids=["v2", "v1"],
)
def test_the_received_header_names_the_client_the_balancer_reported(behind_balancer, header) -> None:
    with connect(behind_balancer["smtp"].port, header) as sock:
        assert first_line(sock).startswith(b"220 ")
        message = mail("Proxied").replace(b"\r\n.", b"\r\n..")
        replies = smtp_exchange(
            sock, b"EHLO client.test", b"MAIL FROM:<carol@remote.test>", b"RCPT TO:<alice@example.com>", b"DATA"
        )
        assert [reply[:3] for reply in replies] == [b"250", b"250", b"250", b"354"]
        assert smtp_exchange(sock, message + b".")[0].startswith(b"250 ")
    [raw] = stored("alice@example.com")
    assert raw.startswith(b"Return-Path: <carol@remote.test>\r\nReceived: from client.test ([203.0.113.9])\r\n")


def test_the_per_ip_limit_counts_the_real_clients(behind_balancer) -> None:
    port = behind_balancer["smtp"].port
    same = [connect(port, proxy.v2_header(CLIENT, ("127.0.0.1", 25))) for _ in range(3)]
    other = connect(port, proxy.v2_header(("203.0.113.10", 1), ("127.0.0.1", 25)))
    try:
        assert [first_line(sock)[:4] for sock in same] == [b"220 ", b"220 ", b"421 "]
        assert first_line(other).startswith(b"220 "), "another client behind the same balancer is not limited"
    finally:
        for sock in [*same, other]:
            sock.close()


def test_a_trusted_peer_must_send_a_header(behind_balancer) -> None:
    with connect(behind_balancer["smtp"].port, b"EHLO client.test\r\n") as sock:
        assert closed(sock), "no greeting, no reply: the connection is closed"
    with connect(behind_balancer["pop3"].port, b"PROXY TCP4 203.0.113.9 127.0.0.1 x 110\r\n") as sock:
        assert closed(sock)


def test_the_balancers_own_check_uses_the_connections_addresses(behind_balancer, settings) -> None:
    with connect(behind_balancer["smtp"].port, proxy.LOCAL_HEADER) as sock:
        assert first_line(sock).startswith(b"220 ")
    # Readiness checks speak the LOCAL header themselves to listeners that expect one.
    for name in ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "managesieve"):
        result = checks.listener(Target(name, "127.0.0.1", behind_balancer[name].port))
        assert result.ok, result


def test_a_header_from_an_untrusted_peer_is_refused(settings, listeners) -> None:
    settings.MAILSITE_PROXY_PROTOCOL_FROM = (ipaddress.ip_network("192.0.2.0/24"),)
    started = {**listeners("smtpd"), **listeners("pop3d"), **listeners("imapd"), **listeners("managesieve")}
    with connect(started["smtp"].port) as sock:
        assert first_line(sock).startswith(b"220 ")
        sock.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1 25\r\n")
        assert first_line(sock).startswith(b"554 5.7.0 ")
        assert closed(sock)
    with connect(started["smtp"].port) as sock:
        first_line(sock)
        sock.sendall(proxy.v2_header(CLIENT, ("127.0.0.1", 25)))
        assert first_line(sock).startswith(b"554 5.7.0 ")
    with connect(started["pop3"].port) as sock:
        assert first_line(sock).startswith(b"+OK")
        sock.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1 110\r\n")
        assert first_line(sock).startswith(b"-ERR PROXY")
        assert closed(sock)
    with connect(started["imap"].port) as sock:
        assert first_line(sock).startswith(b"* OK ")
        sock.sendall(proxy.v2_header(CLIENT, ("127.0.0.1", 143)))
        assert first_line(sock).startswith(b"* BYE PROXY")
        assert closed(sock)
    with connect(started["managesieve"].port) as sock:
        assert sieve_greeting(sock)[-1].startswith(b"OK")
        sock.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1 4190\r\n")
        assert first_line(sock).startswith(b'BYE "PROXY')
        assert closed(sock)
    assert not AuthFailure.objects.exists()


def sieve_greeting(sock: socket.socket) -> list[bytes]:
    """The capability lines of a ManageSieve greeting, through its OK (RFC 5804 1.7)."""
    lines = [first_line(sock)]
    while not lines[-1].startswith((b"OK", b"NO", b"BYE")):
        lines.append(first_line(sock))
    return lines


@pytest.mark.parametrize(
    "header",
    [proxy.v2_header(CLIENT, ("127.0.0.1", 143)), b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 143\r\n"],
    ids=["v2", "v1"],
)
def test_imap_judges_and_throttles_the_real_client(behind_balancer, settings, header) -> None:
    with connect(behind_balancer["imap"].port, header) as sock:
        # From loopback a password may travel in the clear; from the client's real address it may not.
        assert b"LOGINDISABLED" in first_line(sock)
        sock.sendall(b"a LOGIN alice@example.com wrong\r\n")
        assert first_line(sock).startswith(b"a NO [PRIVACYREQUIRED]")
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    with connect(behind_balancer["imap"].port, header) as sock:
        assert b"AUTH=PLAIN" in first_line(sock)
        sock.sendall(b"a LOGIN alice@example.com wrong\r\n")
        assert first_line(sock).startswith(b"a NO [AUTHENTICATIONFAILED]")
    [failure] = AuthFailure.objects.all()
    assert (failure.remote_ip, failure.protocol) == ("203.0.113.9", "imap")


def test_managesieve_judges_and_throttles_the_real_client(behind_balancer, settings) -> None:
    header = proxy.v2_header(CLIENT, ("127.0.0.1", 4190))
    wrong = base64.b64encode(b"\0alice@example.com\0wrong")
    with connect(behind_balancer["managesieve"].port, header) as sock:
        assert b'"SASL" ""\r\n' in sieve_greeting(sock), "no password in the clear from the client's address"
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    with connect(behind_balancer["managesieve"].port, header) as sock:
        assert b'"SASL" "PLAIN"\r\n' in sieve_greeting(sock)
        sock.sendall(b'AUTHENTICATE "PLAIN" "' + wrong + b'"\r\n')
        assert first_line(sock).startswith(b"NO ")
    [failure] = AuthFailure.objects.all()
    assert (failure.remote_ip, failure.protocol) == ("203.0.113.9", "sieve")


def test_pop3_judges_and_throttles_the_real_client(behind_balancer, settings) -> None:
    header = b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 110\r\n"
    with connect(behind_balancer["pop3"].port, header) as sock:
        assert first_line(sock).startswith(b"+OK")
        sock.sendall(b"USER alice@example.com\r\n")
        # From loopback a password may travel in the clear; from the client's real address it may not.
        assert first_line(sock).startswith(b"-ERR")
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    with connect(behind_balancer["pop3"].port, header) as sock:
        assert first_line(sock).startswith(b"+OK")
        sock.sendall(b"USER alice@example.com\r\n")
        assert first_line(sock).startswith(b"+OK")
        sock.sendall(b"PASS wrong\r\n")
        assert first_line(sock).startswith(b"-ERR")
    [failure] = AuthFailure.objects.all()
    assert (failure.remote_ip, failure.protocol) == ("203.0.113.9", "pop3")


@pytest.mark.parametrize(("name", "greeting"), [("smtps", b"220 "), ("pop3s", b"+OK"), ("imaps", b"* OK ")])
def test_implicit_tls_ports_read_the_header_before_the_handshake(behind_balancer, tls_client_context, name, greeting):
    # Header and ClientHello arrive together, as they do from a balancer forwarding a client that speaks at once.
    raw = connect(behind_balancer[name].port, proxy.v2_header(CLIENT, ("127.0.0.1", 465)))
    with tls_client_context.wrap_socket(raw, server_hostname="localhost") as sock:
        assert first_line(sock).startswith(greeting)


def test_the_received_header_of_implicit_tls_submission(behind_balancer, tls_client_context) -> None:
    raw = connect(behind_balancer["smtps"].port, b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 465\r\n")
    with tls_client_context.wrap_socket(raw, server_hostname="localhost") as sock:
        assert first_line(sock).startswith(b"220 ")
        replies = smtp_exchange(sock, b"EHLO client.test", b"AUTH PLAIN " + PLAIN, b"MAIL FROM:<alice@example.com>")
        assert [reply[:3] for reply in replies] == [b"250", b"235", b"250"]
        replies = smtp_exchange(
            sock,
            b"RCPT TO:<alice@example.com>",
            b"DATA",
            mail("Self", sender="alice@example.com", to="alice@example.com") + b".",
        )
        assert replies[-1].startswith(b"250 ")
    [raw_message] = stored("alice@example.com")
    assert b"Received: from client.test ([203.0.113.9])\r\n\tby mx.mailsite.test (Mailsite) with ESMTPSA" in raw_message


V2_WITH_TLV = (
    proxy.V2_SIGNATURE
    + bytes([0x21, 0x11])
    + (12 + 3 + 700).to_bytes(2, "big")
    + bytes([203, 0, 113, 9, 127, 0, 0, 1])
    + (40000).to_bytes(2, "big")
    + (25).to_bytes(2, "big")
    + b"\x05"  # PP2_TYPE_UNIQUE_ID (RFC-less TLV), longer than one look at the socket
    + (700).to_bytes(2, "big")
    + b"u" * 700
)


@pytest.mark.parametrize(
    "pieces",
    [
        [b"PROXY TCP4 203.0.", b"113.9 127.0.0.1 40000 25\r\n"],
        [proxy.v2_header(CLIENT, ("127.0.0.1", 25))[:7], proxy.v2_header(CLIENT, ("127.0.0.1", 25))[7:]],
        [V2_WITH_TLV[:300], V2_WITH_TLV[300:]],
        [V2_WITH_TLV],
    ],
    ids=["v1-split", "v2-split", "v2-long-split", "v2-long"],
)
def test_a_header_in_pieces_or_longer_than_one_look(behind_balancer, pieces) -> None:
    with connect(behind_balancer["smtp"].port) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.1)  # separate segments, read separately
        sock.sendall(b"EHLO client.test\r\n")  # right behind the header: must not be eaten with it
        assert first_line(sock).startswith(b"220 ")
        reply = first_line(sock)
        while reply[3:4] == b"-":
            reply = first_line(sock)
        assert reply.startswith(b"250 ")
        assert smtp_exchange(sock, b"MAIL FROM:<carol@remote.test>", b"RCPT TO:<alice@example.com>", b"DATA")[2][
            :3
        ] == (b"354")
        assert smtp_exchange(sock, mail("Pieces") + b".")[0].startswith(b"250 ")
    [raw] = stored("alice@example.com")
    assert b"([203.0.113.9])" in raw
