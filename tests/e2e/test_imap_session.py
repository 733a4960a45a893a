"""IMAP sessions over real sockets with imaplib: greeting, capabilities, login rules, folders, limits."""

from __future__ import annotations

import base64
import imaplib
import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.conftest import PASSWORD
from tests.imap_support import ADDRESS, Server, deliver, message, start
from tests.network import non_loopback_address


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def raw_session(server: Server) -> socket.socket:
    sock = server.track(socket.create_connection((server.host, server.port), timeout=10))
    assert sock.recv(4096).startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    return sock


def exchange(sock: socket.socket, data: bytes, until: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while until not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return received


def test_capability_and_login(server: Server) -> None:
    client = server.client(login=False)
    caps = client.capabilities
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "LITERAL+", "STARTTLS", "AUTH=PLAIN", "SPECIAL-USE"):
        assert cap in caps
    typ, data = client.login(ADDRESS, PASSWORD)
    assert typ == "OK"
    assert b"[CAPABILITY" in data[0]
    assert client.noop()[0] == "OK"
    assert client.logout()[0] == "BYE"


def test_wrong_password_is_refused(server: Server) -> None:
    client = server.client(login=False)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(ADDRESS, "wrong")
    assert client.state == "NONAUTH"


def test_failed_logins_are_throttled(server: Server, settings, make_account) -> None:
    """After MAILSITE_AUTH_MAX_FAILURES failures for an address (services.authenticate, shared by every
    protocol) even the right password is refused, and every refusal reads like an unknown address's."""
    settings.MAILSITE_AUTH_MAX_FAILURES = 2
    sock = raw_session(server)
    refused = b" NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    attempts = [
        b'a1 LOGIN nobody@example.test "wrong"',
        b'a2 LOGIN alice@example.test "wrong"',
        b'a3 LOGIN alice@example.test "wrong"',
        b'a4 LOGIN alice@example.test "' + PASSWORD.encode() + b'"',
        b"a5 AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()),
    ]
    for attempt in attempts:
        tag = attempt.split()[0]
        assert exchange(sock, attempt + b"\r\n", b"\r\n") == tag + refused
    # The throttle is per address: another account still logs in from the same client.
    make_account("carol@example.test")
    assert exchange(sock, b'a6 LOGIN carol@example.test "' + PASSWORD.encode() + b'"\r\n', b"\r\n").startswith(
        b"a6 OK "
    )


def test_authenticate_plain(server: Server) -> None:
    client = server.client(login=False)
    typ, _ = client.authenticate("PLAIN", lambda _: f"\0{ADDRESS}\0{PASSWORD}".encode())
    assert typ == "OK"
    assert client.select("INBOX")[0] == "OK"


def test_starttls_then_login(server: Server, tls_client_context: ssl.SSLContext) -> None:
    client = server.client(login=False)
    client.starttls(ssl_context=tls_client_context)
    assert "STARTTLS" not in client.capabilities
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"


def test_implicit_tls(server: Server, tls_client_context: ssl.SSLContext) -> None:
    client = imaplib.IMAP4_SSL(server.host, server.tls_port, ssl_context=tls_client_context, timeout=10)
    server.track(client)
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"
    client.logout()


def test_login_refused_without_tls_off_loopback(listeners, make_account, settings, tls_client_context) -> None:
    """A client that is not on loopback must use STARTTLS first, unless MAILSITE_ALLOW_PLAINTEXT_AUTH is set."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    make_account(ADDRESS)
    settings.MAILSITE_BIND = "0.0.0.0"
    port = listeners("imapd")["imap"].port
    client = imaplib.IMAP4(address, port, timeout=10)
    assert "LOGINDISABLED" in client.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        client.login(ADDRESS, PASSWORD)
    # The certificate names localhost, not this address; the chain is still verified.
    tls_client_context.check_hostname = False
    client.starttls(tls_client_context)
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"
    client.logout()
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    client = imaplib.IMAP4(address, port, timeout=10)
    assert client.login(ADDRESS, PASSWORD)[0] == "OK"
    client.logout()


def test_pipelined_plaintext_after_starttls_is_dropped(server: Server, tls_client_context: ssl.SSLContext) -> None:
    sock = raw_session(server)
    reply = exchange(sock, b"a STARTTLS\r\nb LOGIN injected x\r\n", b"a OK")
    assert b"b " not in reply
    tls = server.track(tls_client_context.wrap_socket(sock, server_hostname="localhost"))
    assert b"c OK" in exchange(tls, b"c NOOP\r\n", b"c OK")


def test_select_reports_folder_state(server: Server) -> None:
    deliver(message("one"))
    deliver(message("two"))
    client = server.client()
    typ, data = client.select("inbox")
    assert (typ, data) == ("OK", [b"2"])
    assert client.untagged_responses["UIDVALIDITY"][0].isdigit()
    assert client.untagged_responses["UIDNEXT"] == [b"3"]
    assert client.untagged_responses["UNSEEN"] == [b"1"]
    typ, data = client._simple_command("EXAMINE", "INBOX")
    assert typ == "OK"
    assert data[-1].startswith(b"[READ-ONLY]")
    assert client.untagged_responses["PERMANENTFLAGS"][-1] == b"()"


def test_folder_commands(server: Server) -> None:
    client = server.client()
    assert client.create("Projects/2024")[0] == "OK"
    assert client.create("Entw&APw-rfe")[0] == "OK"
    _, data = client.list()
    names = [line.decode() for line in data]
    assert r'(\HasChildren) "/" "Projects"' in names
    assert r'(\HasNoChildren) "/" "Projects/2024"' in names
    assert r'(\HasNoChildren \Sent) "/" "Sent"' in names
    assert r'(\HasNoChildren) "/" "Entw&APw-rfe"' in names
    _, data = client.list('""', "%")
    assert all("/" not in line.decode().rsplit(" ", 1)[1] for line in data)
    assert client.rename("Projects/2024", "Archive/2024")[0] == "OK"
    _, data = client.list("Archive/", "*")
    assert [line.decode() for line in data] == [r'(\HasNoChildren) "/" "Archive/2024"']
    assert client.unsubscribe("Archive/2024")[0] == "OK"
    _, data = client.lsub('""', "Archive*")
    assert [line.decode() for line in data] == [r'(\HasChildren) "/" "Archive"']
    assert client.subscribe("Archive/2024")[0] == "OK"
    assert client.delete("Archive/2024")[0] == "OK"
    typ, data = client.status("INBOX", "(MESSAGES UIDNEXT UNSEEN RECENT UIDVALIDITY)")
    assert typ == "OK"
    assert data[0].startswith(b'"INBOX" (MESSAGES 0 UIDNEXT 1 UNSEEN 0 RECENT 0 UIDVALIDITY ')


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (b"a CREATE INBOX\r\n", b"a NO [ALREADYEXISTS]"),
        (b"a CREATE Sent\r\n", b"a NO [ALREADYEXISTS]"),
        (b"a CREATE a/../b\r\n", b"a NO "),
        (b'a CREATE ""\r\n', b"a NO "),
        (b"a CREATE &Jjo\r\n", b"a BAD Invalid mailbox name"),
        (b"a CREATE {4}\r\n", b"+ "),
        (b"a DELETE INBOX\r\n", b"a NO [CANNOT]"),
        (b"a DELETE Nowhere\r\n", b"a NO [NONEXISTENT]"),
        (b"a SELECT Nowhere\r\n", b"a NO [NONEXISTENT]"),
        (b"a RENAME Nowhere Else\r\n", b"a NO [NONEXISTENT]"),
        (b"a RENAME Sent Trash\r\n", b"a NO [ALREADYEXISTS]"),
        (b"a STATUS INBOX (BOGUS)\r\n", b"a BAD"),
        (b"a FETCH 1 FLAGS\r\n", b"a BAD FETCH is not allowed in the authenticated state"),
        (b"a LOGIN x y\r\n", b"a BAD LOGIN is not allowed in the authenticated state"),
    ],
)
def test_folder_errors(server: Server, command: bytes, expected: bytes) -> None:
    sock = raw_session(server)
    exchange(sock, b'l LOGIN %s "%s"\r\n' % (ADDRESS.encode(), PASSWORD.encode()), b"l OK")
    assert exchange(sock, command, b"\r\n").startswith(expected)


def test_overlong_line_and_oversized_literal(server: Server, settings) -> None:
    sock = raw_session(server)
    reply = exchange(sock, b"a NOOP " + b"x" * 70000 + b"\r\nb NOOP\r\n", b"b OK")
    assert b"a BAD Command line too long" in reply
    exchange(sock, b'l LOGIN %s "%s"\r\n' % (ADDRESS.encode(), PASSWORD.encode()), b"l OK")
    size = settings.MAILSITE_MAX_MESSAGE_SIZE + 1
    reply = exchange(sock, b"c APPEND INBOX {%d}\r\n" % size, b"\r\n")
    assert reply.startswith(b"c BAD [TOOBIG]")
    assert b"d OK" in exchange(sock, b"d NOOP\r\n", b"d OK")
    reply = exchange(sock, b"e APPEND INBOX {%d+}\r\n" % size, b"\r\n")
    assert reply.startswith(b"* BYE [TOOBIG]")
    sock.settimeout(5)
    assert sock.recv(100) == b""


def test_idle_timeout_closes_the_session(server: Server, settings) -> None:
    settings.MAILSITE_IMAP_IDLE_TIMEOUT = 0.5
    sock = raw_session(server)
    sock.settimeout(5)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    assert received == b"* BYE Autologout; idle for too long\r\n"


def test_one_broken_session_does_not_disturb_another(server: Server) -> None:
    deliver(message("kept"))
    good = server.client()
    good.select("INBOX")
    bad = raw_session(server)
    bad.sendall(b"\x00\xff garbage {99999999999}\r\n" + b"(" * 1000 + b"\r\n")
    bad.close()
    typ, data = good.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert b"Subject: kept" in data[0][1]
