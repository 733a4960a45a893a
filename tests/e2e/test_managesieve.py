"""ManageSieve end to end: the real listener, PostgreSQL, and sievelib's client over STARTTLS."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings as django_settings
from sievelib.managesieve import Client

from sieve.models import SieveScript
from tests.conftest import PASSWORD

ADDRESS = "alice@example.com"
RULES = 'require ["fileinto"];\r\nif header :contains "Subject" "report" {\r\n  fileinto "Reports";\r\n}\r\n'


@pytest.fixture
def managesieve(listeners, make_account, monkeypatch):
    make_account(ADDRESS)
    # sievelib verifies the server with the default trust store: the suite's test CA is put there.
    monkeypatch.setenv("SSL_CERT_FILE", django_settings.TEST_CA_FILE)
    return listeners("managesieve")["managesieve"]


def connected(port: int) -> Client:
    client = Client("127.0.0.1", port, srvhostname="localhost")
    assert client.connect(ADDRESS, PASSWORD, starttls=True, authmech="PLAIN")
    return client


def test_session_over_starttls(managesieve):
    client = connected(managesieve.port)
    assert client.get_implementation() == "Mailsite"
    assert "vacation" in client.get_sieve_capabilities()
    assert client.checkscript(RULES)
    assert not client.checkscript('fileinto "x";')
    assert "line 1, column 1" in client.errmsg.decode()
    assert client.havespace("rules", len(RULES))
    assert client.putscript("rules", RULES)
    assert not client.putscript("broken", 'if header "x" {')
    assert client.putscript("second", "keep;")
    assert client.setactive("rules")
    assert client.listscripts() == ("rules", ["second"])
    # sievelib hands the script back with its own line ends; the stored bytes are checked below.
    assert client.getscript("rules").splitlines() == RULES.splitlines()
    assert not client.deletescript("rules")  # the active script
    assert client.renamescript("second", "spare")
    assert client.deletescript("spare")
    assert client.listscripts() == ("rules", [])
    client.logout()
    stored = SieveScript.objects.get()
    assert (stored.name, stored.active, stored.content) == ("rules", True, RULES)


def test_wrong_password_is_refused(managesieve):
    client = Client("127.0.0.1", managesieve.port, srvhostname="localhost")
    assert not client.connect(ADDRESS, "wrong", starttls=True, authmech="PLAIN")


def test_commands_pipelined_after_starttls_end_the_connection(managesieve):
    # RFC 5804 2.2 / the STARTTLS injection flaw: nothing sent in plain text may be taken as protected.
    with socket.create_connection(("127.0.0.1", managesieve.port), timeout=10) as sock:
        greeting = b""
        while not greeting.endswith(b"OK\r\n"):
            greeting += sock.recv(4096)
        sock.sendall(b"STARTTLS\r\nLISTSCRIPTS\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received == b'BYE "commands pipelined after STARTTLS"\r\n'


def test_a_one_megabyte_script_is_refused_and_the_session_goes_on(managesieve):
    client = connected(managesieve.port)
    big = "#" + "x" * (1024 * 1024) + "\r\nkeep;\r\n"
    assert not client.havespace("big", len(big))
    assert not client.putscript("big", big)
    assert client.putscript("small", "keep;")
    assert client.listscripts() == (None, ["small"])
    client.logout()
