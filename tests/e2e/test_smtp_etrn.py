"""ETRN (RFC 1985) on the MX: a real listener and raw sockets; the queue rows in PostgreSQL and the relay's task
in Redis show the domain's deferred mail made due and the relay woken."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from mailboxes.actions import queueing
from relay import dead
from relay.models import OutboundRecipient, State
from tests.relay_support import RELAY_QUEUE

pytestmark = pytest.mark.xdist_group("smtp-etrn")

LATER = datetime.timedelta(hours=1)


@pytest.fixture
def broker(settings) -> redis.Redis:
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.delete(RELAY_QUEUE)
    yield client
    client.delete(RELAY_QUEUE)


@pytest.fixture
def mx(listeners, settings, make_account, broker):
    settings.MAILSITE_ETRN_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    make_account("alice@example.com")
    return listeners("smtpd")["smtp"].port


def deferred(*recipients: str) -> list[int]:
    """One queued message per recipient, deferred for an hour as after a failed attempt; their ids."""
    ids = []
    for rcpt in recipients:
        raw = f"From: alice@example.com\r\nTo: {rcpt}\r\nSubject: waiting\r\n\r\nHi\r\n".encode()
        queued = queueing.enqueue(raw, "alice@example.com", [rcpt], author_domain="example.com")
        assert queued is not None
        ids.append(queued.pk)
    OutboundRecipient.objects.update(state=State.DEFERRED, next_attempt=timezone.now() + LATER)
    return ids


def due() -> set[str]:
    return set(OutboundRecipient.objects.filter(next_attempt__lte=timezone.now()).values_list("address", flat=True))


def test_etrn_makes_the_domains_deferred_mail_due_and_wakes_the_relay(mx, raw_smtp, broker):
    deferred("bob@example.net", "carol@example.net", "dave@mail.example.net", "erin@example.org")
    broker.delete(RELAY_QUEUE)  # the tasks sent when the mail was queued
    session = raw_smtp(mx)
    assert "250-ETRN" in session.command("EHLO primary.example.net").splitlines()

    assert session.command("ETRN example.net") == "253 2.0.0 OK, 2 pending messages for node example.net started"
    assert due() == {"bob@example.net", "carol@example.net"}
    assert broker.llen(RELAY_QUEUE) == 2, "one relay task per message now due"

    assert session.command("ETRN @example.net") == "253 2.0.0 OK, 3 pending messages for node @example.net started"
    assert due() == {"bob@example.net", "carol@example.net", "dave@mail.example.net"}
    assert session.command("ETRN nothing.example") == "251 2.0.0 OK, no messages waiting for node nothing.example"


def test_etrn_brings_a_dead_destination_back(mx, raw_smtp, settings):
    settings.MAILSITE_RELAY_DEAD_AFTER = 1
    settings.MAILSITE_LIMITS_PREFIX = f"mailsite:test-etrn:{mx}:"
    assert dead.unreachable("example.net") is not None
    assert dead.dead_until("example.net") is not None
    session = raw_smtp(mx)
    session.command("EHLO primary.example.net")
    assert session.command("ETRN example.net").startswith("251 ")
    assert dead.dead_until("example.net") is None


def test_etrn_refusals(mx, raw_smtp, settings):
    [message_id] = deferred("bob@example.net")
    session = raw_smtp(mx)
    session.command("EHLO primary.example.net")
    assert session.command("ETRN") == "501 5.5.4 Syntax: ETRN domain"
    assert session.command("ETRN not_a_domain") == "501 5.5.4 Syntax: ETRN domain"
    assert session.command("ETRN #outbound").startswith("458 4.3.0 Unable to queue messages for node #outbound")
    session.command("MAIL FROM:<carol@remote.test>")
    assert session.command("ETRN example.net") == "503 5.5.1 ETRN is not allowed inside a mail transaction"
    session.command("RSET")

    settings.MAILSITE_ETRN_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]
    assert session.command("ETRN example.net") == (
        "459 4.7.1 Node example.net not allowed: this client may not ask for queue runs"
    )
    assert due() == set()
    settings.MAILSITE_ETRN_NETWORKS = []  # the default: not offered
    assert "ETRN" not in raw_smtp(mx).command("EHLO other.example")
    assert OutboundRecipient.objects.get(message_id=message_id).state == State.DEFERRED
