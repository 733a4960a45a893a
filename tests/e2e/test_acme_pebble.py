"""ACME against Debian's Pebble on loopback: obtain a certificate through HTTP-01 answered by our web listener,
serve it on HTTPS, IMAPS and SMTPS, renew it, and keep an open IMAPS session through the renewal."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from django.conf import settings as django_settings

from credentials.models import AcmeChallenge
from mailboxes import asyncdb
from mailsite import acme, tls, web
from mailsite.runtime import Listener, start_protocols
from tests.acme_support import Pebble
from tests.conftest import PASSWORD, LoopThread
from tests.dns_server import DnsServer

HOSTNAME = "mx.mailsite.test"
EXTRA_NAME = "mail.mailsite.test"
ADDRESS = "dana@example.test"


@dataclass
class System:
    ports: dict[str, int]
    pebble: Pebble

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pebble.root_pem())


@pytest.fixture
def system(transactional_db, settings, end_stray_connections, tmp_path, make_account) -> Iterator[System]:
    make_account(ADDRESS)
    dns = DnsServer()
    for name in (HOSTNAME, EXTRA_NAME):
        dns.add(name, "A", "127.0.0.1")
    for name in dir(django_settings):
        if name.startswith("MAILSITE_") and name.endswith("_PORT"):
            setattr(settings, name, 0)
    settings.MAILSITE_HTTPS_PORT = 0
    settings.DATA_DIR = tmp_path / "data"
    settings.MAILSITE_TLS_CERT = settings.MAILSITE_TLS_KEY = None
    settings.MAILSITE_ACME = True
    settings.MAILSITE_ACME_NAMES = [EXTRA_NAME]
    settings.ALLOWED_HOSTS = [*django_settings.ALLOWED_HOSTS, EXTRA_NAME]
    settings.MAILSITE_TLS_RELOAD_INTERVAL = 0.1
    tls.server_context.cache_clear()  # this test's listeners start with their own context
    loop = LoopThread()
    started: list[Listener] = []
    pebble = None
    try:
        started += loop.run(start_protocols(["imapd", "smtpd"]))
        started += loop.run(web.start_listeners())
        ports = {listener.name: listener.port for listener in started}
        pebble = Pebble(tmp_path / "pebble", http_port=ports["web"], dns=dns.address)
        settings.MAILSITE_ACME_DIRECTORY = pebble.directory
        settings.MAILSITE_ACME_CA_BUNDLE = pebble.ca_file
        yield System(ports, pebble)
    finally:
        for listener in started:
            loop.run(listener.close())
        loop.stop()
        asyncdb.shutdown()
        if pebble is not None:
            pebble.stop()
        dns.close()
        tls.server_context.cache_clear()


def handshake(port: int, context: ssl.SSLContext) -> x509.Certificate:
    """The certificate a listener presents for HOSTNAME, verified against `context`."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOSTNAME) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll until `check` holds; listeners look at the certificate files every 0.1 s in this test."""
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def serves(port: int, context: ssl.SSLContext, serial: int) -> bool:
    try:
        return handshake(port, context).serial_number == serial
    except (ssl.SSLError, OSError):
        return False


class ImapsSession:
    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = context.wrap_socket(raw, server_hostname=HOSTNAME)
        self.buffer = b""
        self.line()

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.conn.recv(65536)
            assert chunk, self.buffer
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def command(self, tag: str, text: str) -> bytes:
        self.conn.sendall(f"{tag} {text}\r\n".encode())
        while not (line := self.line()).startswith(tag.encode() + b" "):
            pass
        return line

    def close(self) -> None:
        self.conn.close()


def https_get(port: int, context: ssl.SSLContext, path: str) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOSTNAME) as conn,
    ):
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOSTNAME}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def test_obtain_serve_everywhere_and_renew_without_dropping_a_session(system: System) -> None:
    assert acme.is_due()  # no certificate yet: the listeners serve a self-signed one
    assert acme.obtain_if_due() is True
    assert not AcmeChallenge.objects.exists()  # answered and cleaned up
    cert_path, _ = acme.certificate_files()
    first = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {HOSTNAME, EXTRA_NAME}
    assert not acme.is_due()

    trust = system.trust()
    for listener in ("imaps", "smtps", "https"):
        wait_for(lambda name=listener: serves(system.ports[name], trust, first.serial_number), f"{listener} cert")
    assert https_get(system.ports["https"], trust, "/login/").startswith(b"HTTP/1.1 200 ")

    # Closed even when a step fails, so no socket of this test is left to a later one.
    with contextlib.closing(ImapsSession(system.ports["imaps"], trust)) as session:
        assert session.command("a", f'LOGIN {ADDRESS} "{PASSWORD}"').startswith(b"a OK")
        assert session.command("b", "SELECT INBOX").startswith(b"b OK")
        old_peer = session.conn.getpeercert(binary_form=True)

        assert acme.obtain_if_due() is False  # not due: nothing asked of the CA
        assert acme.obtain_if_due(force=True) is True
        second = x509.load_pem_x509_certificate(cert_path.read_bytes())
        assert second.serial_number != first.serial_number
        for listener in ("imaps", "smtps", "https"):
            wait_for(
                lambda name=listener: serves(system.ports[name], trust, second.serial_number), f"{listener} renewal"
            )

        # The session opened before the renewal goes on, on its old certificate.
        assert session.command("c", "NOOP").startswith(b"c OK")
        assert session.conn.getpeercert(binary_form=True) == old_peer
        assert session.command("d", "LOGOUT").startswith(b"d OK")

    expiry = second.not_valid_after_utc
    renew_days = django_settings.MAILSITE_ACME_RENEW_DAYS
    assert acme.is_due(now=expiry - datetime.timedelta(days=renew_days - 1))
    assert not acme.is_due(now=expiry - datetime.timedelta(days=renew_days + 1))


def test_unknown_challenge_token_is_not_found(system: System) -> None:
    with socket.create_connection(("127.0.0.1", system.ports["web"]), timeout=10) as conn:
        conn.sendall(f"GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: {HOSTNAME}\r\n\r\n".encode())
        assert conn.recv(100).startswith(b"HTTP/1.1 404 ")
