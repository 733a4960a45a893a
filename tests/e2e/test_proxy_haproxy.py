"""Behind Debian's haproxy sending PROXY v2: the client's real address reaches the Received header and the
sign-in throttle, and only the balancer may send a header."""

from __future__ import annotations

import base64
import ipaddress
import shutil
import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailboxes.models import AuthFailure
from tests.e2e.conftest import free_port
from tests.smtp_support import mail, stored

# The client connects from another loopback address than the balancer's, so the two can be told apart.
CLIENT_IP = "127.0.0.5"
BALANCER = (ipaddress.ip_network("127.0.0.1/32"),)

CONFIG = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend smtp
    bind 127.0.0.1:{smtp_front}
    default_backend smtp
backend smtp
    server mx 127.0.0.1:{smtp} send-proxy-v2
frontend pop3
    bind 127.0.0.1:{pop3_front}
    default_backend pop3
backend pop3
    server pop3 127.0.0.1:{pop3} send-proxy-v2
frontend imap
    bind 127.0.0.1:{imap_front}
    default_backend imap
backend imap
    server imap 127.0.0.1:{imap} send-proxy-v2
frontend managesieve
    bind 127.0.0.1:{managesieve_front}
    default_backend managesieve
backend managesieve
    server managesieve 127.0.0.1:{managesieve} send-proxy-v2
"""
FRONTS = ("smtp", "pop3", "imap", "managesieve")


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, f"haproxy exited: {process.communicate()[1].decode()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "haproxy did not start listening"
            time.sleep(0.1)


@pytest.fixture
def haproxy(settings, listeners, make_account, tmp_path: Path) -> Iterator[dict[str, int]]:
    """haproxy on loopback in front of real SMTP, POP3, IMAP and ManageSieve listeners; yields the ports
    clients connect to."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: apt-get install haproxy (scripts/install-test-deps.sh does)")
    make_account("alice@example.com")
    settings.MAILSITE_PROXY_PROTOCOL_FROM = BALANCER
    started = {**listeners("smtpd"), **listeners("pop3d"), **listeners("imapd"), **listeners("managesieve")}
    ports = {f"{name}_front": free_port() for name in FRONTS}
    config = tmp_path / "haproxy.cfg"
    config.write_text(CONFIG.format(**{name: started[name].port for name in FRONTS}, **ports))
    process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for port in ports.values():
            wait_for(port, process)
        yield {**ports, "smtp": started["smtp"].port}
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_the_received_header_names_the_real_client(haproxy) -> None:
    with smtplib.SMTP("127.0.0.1", haproxy["smtp_front"], source_address=(CLIENT_IP, 0), timeout=30) as client:
        client.ehlo("client.test")
        client.sendmail("carol@remote.test", ["alice@example.com"], mail("Through haproxy"))
    [raw] = stored("alice@example.com")
    assert b"Received: from client.test ([127.0.0.5])\r\n" in raw
    assert b"[127.0.0.1]" not in raw


def test_the_throttle_counts_the_real_client(haproxy, settings) -> None:
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    with socket.create_connection(("127.0.0.1", haproxy["pop3_front"]), source_address=(CLIENT_IP, 0)) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        sock.sendall(b"USER alice@example.com\r\nPASS wrong\r\n")
        assert reader.readline().startswith(b"+OK")
        assert reader.readline().startswith(b"-ERR")
    [failure] = AuthFailure.objects.all()
    assert failure.remote_ip == CLIENT_IP


def test_imap_and_managesieve_throttle_the_real_client(haproxy, settings) -> None:
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    with socket.create_connection(("127.0.0.1", haproxy["imap_front"]), source_address=(CLIENT_IP, 0)) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"* OK ")
        sock.sendall(b"a LOGIN alice@example.com wrong\r\n")
        assert reader.readline().startswith(b"a NO [AUTHENTICATIONFAILED]")
    with socket.create_connection(("127.0.0.1", haproxy["managesieve_front"]), source_address=(CLIENT_IP, 0)) as sock:
        reader = sock.makefile("rb")
        while not reader.readline().startswith(b"OK"):
            pass
        sock.sendall(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(b"\0alice@example.com\0wrong") + b'"\r\n')
        assert reader.readline().startswith(b"NO ")
    failures = AuthFailure.objects.order_by("protocol")
    assert [(failure.protocol, failure.remote_ip) for failure in failures] == [
        ("imap", CLIENT_IP),
        ("sieve", CLIENT_IP),
    ]


def test_a_header_from_past_the_balancer_is_refused(haproxy) -> None:
    with socket.create_connection(("127.0.0.1", haproxy["smtp"]), source_address=(CLIENT_IP, 0)) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1 25\r\n")
        assert reader.readline().startswith(b"554 5.7.0 ")
        assert reader.readline() == b""
