"""App passwords on the real listeners: limited to their protocols, required on request, revoked at once."""

from __future__ import annotations

import imaplib
import io
import poplib
import smtplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.management import call_command

from credentials.models import AppPassword
from mailboxes import actions
from mailboxes.models import Message
from tests.conftest import PASSWORD

ADDRESS = "carol@example.test"


@dataclass
class Ports:
    imap: int
    pop3: int
    submission: int


@pytest.fixture
def ports(listeners, make_account, settings) -> Ports:
    settings.MAILSITE_AUTH_MAX_FAILURES = 50  # these tests fail on purpose more often than the throttle allows
    make_account(ADDRESS)
    started = listeners("imapd", "pop3d", "smtpd")
    return Ports(started["imap"].port, started["pop3"].port, started["submission"].port)


def apppassword(*args: str) -> str:
    out = io.StringIO()
    call_command("apppassword", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def imap_login(port: int, secret: str) -> str:
    with imaplib.IMAP4("127.0.0.1", port, timeout=10) as client:
        try:
            client.login(ADDRESS, secret)
        except imaplib.IMAP4.error as exc:
            return str(exc)
        client.logout()
        return "ok"


def pop3_login(port: int, secret: str) -> str:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        client.user(ADDRESS)
        client.pass_(secret)
    except poplib.error_proto as exc:
        return exc.args[0].decode()
    finally:
        client.close()
    return "ok"


def smtp_login(port: int, secret: str, context: ssl.SSLContext) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.starttls(context=context)
        try:
            client.login(ADDRESS, secret)
        except smtplib.SMTPAuthenticationError as exc:
            return f"{exc.smtp_code} {exc.smtp_error.decode()}"
        return "ok"


def logins(ports: Ports, secret: str, context: ssl.SSLContext) -> dict[str, str]:
    return {
        "imap": imap_login(ports.imap, secret),
        "pop3": pop3_login(ports.pop3, secret),
        "smtp": smtp_login(ports.submission, secret, context),
    }


def test_app_password_works_only_for_its_protocols(ports: Ports, tls_client_context: ssl.SSLContext) -> None:
    secret = apppassword("create", ADDRESS, "--name", "phone", "--protocols", "imap,smtp")
    refused = logins(ports, "wrong-password", tls_client_context)
    assert refused == {
        "imap": "b'[AUTHENTICATIONFAILED] Authentication failed'",
        "pop3": "-ERR [AUTH] Authentication failed",
        "smtp": "535 5.7.8 Authentication credentials invalid",
    }
    # Allowed where chosen; elsewhere refused exactly like a wrong password.
    assert logins(ports, secret, tls_client_context) == {"imap": "ok", "pop3": refused["pop3"], "smtp": "ok"}
    # Typed in upper case or without its dashes, as phones tend to.
    assert imap_login(ports.imap, secret.replace("-", "").upper()) == "ok"
    # The main password still works for mail clients until app passwords are required.
    assert logins(ports, PASSWORD, tls_client_context) == {"imap": "ok", "pop3": "ok", "smtp": "ok"}
    used = AppPassword.objects.get(name="phone")
    assert used.last_used is not None
    assert used.last_used_ip == "127.0.0.1"


def test_required_app_passwords_refuse_the_main_password(ports: Ports, tls_client_context: ssl.SSLContext) -> None:
    secret = apppassword("create", ADDRESS, "--name", "laptop")
    apppassword("require", ADDRESS, "on")
    refused = logins(ports, "wrong-password", tls_client_context)
    assert logins(ports, PASSWORD, tls_client_context) == refused
    assert logins(ports, secret, tls_client_context) == {"imap": "ok", "pop3": "ok", "smtp": "ok"}
    apppassword("require", ADDRESS, "off")
    assert imap_login(ports.imap, PASSWORD) == "ok"


def test_unknown_user_and_wrong_protocol_get_the_same_reply(ports: Ports, tls_client_context) -> None:
    secret = apppassword("create", ADDRESS, "--name", "pop-only", "--protocols", "pop3")
    with imaplib.IMAP4("127.0.0.1", ports.imap, timeout=10) as client:
        with pytest.raises(imaplib.IMAP4.error) as unknown:
            client.login("nobody@example.test", secret)
        with pytest.raises(imaplib.IMAP4.error) as wrong_protocol:
            client.login(ADDRESS, secret)
    assert str(unknown.value) == str(wrong_protocol.value)


@pytest.fixture
def idle_session(ports: Ports) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", ports.imap), timeout=10)
    yield sock
    sock.close()


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def test_revocation_ends_an_open_idle_session(ports: Ports, idle_session: socket.socket) -> None:
    secret = apppassword("create", ADDRESS, "--name", "tablet", "--protocols", "imap")
    other = imaplib.IMAP4("127.0.0.1", ports.imap, timeout=10)
    other.login(ADDRESS, PASSWORD)  # signed in with the main password: must survive
    sock = idle_session
    read_until(sock, b"\r\n")
    sock.sendall(f'a LOGIN {ADDRESS} "{secret}"\r\n'.encode())
    assert b"a OK" in read_until(sock, b"a OK")
    sock.sendall(b"c IDLE\r\n")  # IDLE in the authenticated state: no folder is needed to be told
    assert read_until(sock, b"+ idling\r\n").endswith(b"+ idling\r\n")

    assert apppassword("revoke", ADDRESS, "tablet") == "revoked 'tablet'"

    rest = read_until(sock, b"\r\n")
    assert rest == b"* BYE The app password of this session was revoked\r\n"
    assert sock.recv(100) == b""  # the server closed the connection
    assert other.noop()[0] == "OK"
    other.logout()
    assert imap_login(ports.imap, secret) != "ok"


def test_command_lists_and_refuses_unknown_names(ports: Ports) -> None:
    apppassword("create", ADDRESS, "--name", "phone", "--protocols", "imap")
    listing = apppassword("list", ADDRESS)
    assert listing.startswith("phone\timap\tcreated ")
    assert listing.endswith("never used")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already an app password named 'phone'"):
        apppassword("create", ADDRESS, "--name", "phone")
    with pytest.raises(CommandError, match="unknown protocol web"):
        apppassword("create", ADDRESS, "--name", "web", "--protocols", "web")
    with pytest.raises(CommandError, match="no app password named 'tablet'"):
        apppassword("revoke", ADDRESS, "tablet")


def test_revocation_ends_an_open_pop3_session_without_deleting(ports: Ports) -> None:
    secret = apppassword("create", ADDRESS, "--name", "old phone", "--protocols", "pop3")
    actions.deliver(b"Subject: kept\r\n\r\nBody\r\n", "bob@example.org", [ADDRESS])
    with socket.create_connection(("127.0.0.1", ports.pop3), timeout=10) as sock:
        assert read_until(sock, b"\r\n").startswith(b"+OK")
        sock.sendall(f"USER {ADDRESS}\r\n".encode())
        assert read_until(sock, b"\r\n").startswith(b"+OK")
        sock.sendall(f"PASS {secret}\r\n".encode())
        assert read_until(sock, b"\r\n").startswith(b"+OK")
        sock.sendall(b"DELE 1\r\n")
        assert read_until(sock, b"\r\n").startswith(b"+OK")

        apppassword("revoke", ADDRESS, "old phone")

        assert read_until(sock, b"\r\n") == b"-ERR [AUTH] The app password of this session was revoked\r\n"
        assert sock.recv(100) == b""
    assert Message.objects.filter(mailbox__account__address=ADDRESS).count() == 1  # no UPDATE state


def test_revocation_ends_an_open_submission_session(ports: Ports, tls_client_context: ssl.SSLContext) -> None:
    secret = apppassword("create", ADDRESS, "--name", "laptop", "--protocols", "smtp")
    with smtplib.SMTP("127.0.0.1", ports.submission, timeout=10) as client:
        client.starttls(context=tls_client_context)
        client.login(ADDRESS, secret)
        assert client.mail(ADDRESS)[0] == 250

        apppassword("revoke", ADDRESS, "laptop")

        assert client.sock is not None
        assert read_until(client.sock, b"\r\n") == b"421 4.7.0 The app password of this session was revoked\r\n"
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
            client.noop()
