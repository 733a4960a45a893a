"""Junk scoring at the MX with a real rspamd (Debian's daemon, started privately on loopback ports)."""

from __future__ import annotations

import imaplib
import logging
import smtplib
import socket
import threading
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from mailauth.models import JunkTraining, SenderRule
from mailboxes.models import Account, Mailbox, Message, Role
from tests.conftest import PASSWORD
from tests.dns_server import DnsServer
from tests.e2e.conftest import free_port
from tests.relay_support import RELAY_QUEUE, CeleryWorker, wait_for
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


SPAM_TEXT = (
    "Congratulations winner! Claim your casino bonus and cheap pills today. Click the link below to receive "
    "your lottery prize money, limited offer, act now, free gift card, discount pharmacy, best price guaranteed."
)


@pytest.fixture
def worker(rspamd, tmp_path, settings):
    """A real Celery worker (the training task runs there), pointed at the private rspamd."""
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE  # where this test process sends tasks, and the worker listens
    worker = CeleryWorker(tmp_path / "worker", {"MAILSITE_RSPAMD_CONTROLLER_URL": rspamd.controller_url})
    worker.start()
    yield worker
    worker.stop()


def test_imap_move_to_junk_and_webmail_move_out_train_rspamd(mx, rspamd, listeners, worker, client):
    assert send(mx, mail("Prize", body=SPAM_TEXT + "\r\n"))[0] == 250
    alice = Account.objects.get(address="alice@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    junk_folder = Mailbox.objects.get(account=alice, role=Role.JUNK)
    learned = rspamd.learned()

    imap = imaplib.IMAP4("127.0.0.1", listeners("imapd")["imap"].port, timeout=10)
    try:
        imap.login("alice@example.com", PASSWORD)
        imap.select("INBOX")
        assert imap.uid("MOVE", "1:*", junk_folder.name)[0] == "OK"
    finally:
        imap.logout()
    wait_for(lambda: rspamd.learned() > learned, timeout=30)
    assert JunkTraining.objects.get(account=alice).spam is True

    # The webmail's move out of Junk says "not junk": the same message is relearnt as ham.
    signed_in = client.post(reverse("webmail:login"), {"address": "alice@example.com", "password": PASSWORD})
    assert signed_in.status_code == 302
    uid = Message.objects.get(mailbox=junk_folder).uid
    moved = client.post(
        reverse("webmail:act", kwargs={"folder_id": junk_folder.pk}),
        {"action": "move", "target": inbox.pk, "uid": uid},
    )
    assert moved.status_code == 302
    wait_for(lambda: not JunkTraining.objects.get(account=alice).spam, timeout=30)
    wait_for(lambda: rspamd.learned() > learned + 1, timeout=30)


def folder_of_only_message(address: str) -> str:
    [message] = Message.objects.filter(account__address=address).select_related("mailbox")
    return message.mailbox.role


def test_junk_score_files_into_junk_unless_the_sender_is_allowed(mx, settings):
    settings.MAILSITE_SPAM_REJECT_SCORE = 100.0
    settings.MAILSITE_AUTH_CACHE_SECONDS = 0
    assert send(mx, mail("gtube", body=GTUBE + "\r\n"))[0] == 250
    assert folder_of_only_message("alice@example.com") == Role.JUNK
    Message.objects.all().delete()
    alice = Account.objects.get(address="alice@example.com")
    SenderRule.objects.create(account=alice, sender="sender.test", allow=True)
    assert send(mx, mail("gtube", body=GTUBE + "\r\n"))[0] == 250
    assert folder_of_only_message("alice@example.com") == Role.INBOX


def test_block_list_files_into_junk_for_that_account_only(mx, make_account, settings):
    settings.MAILSITE_AUTH_CACHE_SECONDS = 0
    make_account("bob@example.com")
    alice = Account.objects.get(address="alice@example.com")
    SenderRule.objects.create(account=alice, sender="carol@remote.test", allow=False)
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.sendmail("bounce@lists.test", ["alice@example.com", "bob@example.com"], mail("list mail"))
    assert folder_of_only_message("alice@example.com") == Role.JUNK
    assert folder_of_only_message("bob@example.com") == Role.INBOX
