"""Junk scoring at the MX with a real rspamd (Debian's daemon, started privately on loopback ports)."""

from __future__ import annotations

import logging
import smtplib
import socket
import threading
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings

from tests.dns_server import DnsServer
from tests.e2e.conftest import free_port
from tests.rspamd_support import Rspamd
from tests.smtp_support import mail, stored

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory) -> Iterator[Rspamd]:
    dns = DnsServer()
    engine = Rspamd(
        tmp_path_factory.mktemp("rspamd"),
        dns=dns.address,
        redis_url=django_settings.MAILSITE_BROKER_URL,
        scan_port=free_port(),
        controller_port=free_port(),
    )
    yield engine
    engine.stop()
    engine.forget_statistics()
    dns.close()


@pytest.fixture
def mx(rspamd, settings, listeners, make_account):
    settings.MAILSITE_RSPAMD_URL = rspamd.url
    settings.MAILSITE_RSPAMD_CONTROLLER_URL = rspamd.controller_url
    make_account("alice@example.com")
    return listeners("smtpd")["smtp"].port


def send(port: int, raw: bytes) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("mail.sender.test")
        client.mail("carol@sender.test")
        client.rcpt("alice@example.com")
        code, text = client.data(raw)
    return code, text.decode()


def spam_fields(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ")
    return [line for line in head.split("\r\n") if line.lower().startswith("x-spam")]


def test_gtube_is_refused_at_the_reject_score(mx):
    assert send(mx, mail(body=GTUBE + "\r\n")) == (550, "5.7.1 Message refused as spam")
    assert stored("alice@example.com") == []


def test_gtube_below_a_higher_reject_score_is_marked_as_junk(mx, settings):
    settings.MAILSITE_SPAM_REJECT_SCORE = 100.0
    assert send(mx, mail(body=GTUBE + "\r\n"))[0] == 250
    [raw] = stored("alice@example.com")
    fields = spam_fields(raw)
    assert fields[0] == "X-Spam: Yes"
    assert fields[1].startswith("X-Spam-Status: Yes, score=15.00 required=6.00 engine=rspamd tests=")
    assert "GTUBE" in fields[1]


def test_ham_is_delivered_with_its_score_and_forged_fields_removed(mx):
    assert send(mx, mail(extra="X-Spam: No\r\nX-Spam-Status: No, score=-100\r\n"))[0] == 250
    [raw] = stored("alice@example.com")
    fields = spam_fields(raw)
    assert [f.split(",")[0] for f in fields] == ["X-Spam: No", "X-Spam-Status: No"]
    assert "score=-100" not in raw.decode()


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers, like a hung rspamd."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    server.close()


def test_rspamd_hanging_or_down_delivers_unscored_and_logs(settings, listeners, make_account, unanswering_port, caplog):
    caplog.set_level(logging.WARNING, logger="mailauth.junk")
    make_account("alice@example.com")
    port = listeners("smtpd")["smtp"].port
    settings.MAILSITE_RSPAMD_TIMEOUT = 0.5
    settings.MAILSITE_RSPAMD_URL = f"http://127.0.0.1:{unanswering_port}"
    assert send(port, mail("hung", body=GTUBE + "\r\n"))[0] == 250
    settings.MAILSITE_RSPAMD_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert send(port, mail("down", body=GTUBE + "\r\n"))[0] == 250
    assert [spam_fields(raw) for raw in stored("alice@example.com")] == [[], []]
    warnings = [r.getMessage() for r in caplog.records if "delivered unscored" in r.getMessage()]
    assert len(warnings) == 2
    assert "no answer within 0.5s" in warnings[0]
