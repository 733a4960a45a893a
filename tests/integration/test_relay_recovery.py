"""Losing a worker or the broker loses no mail: the queue rows are the truth and the sweep re-sends what is due."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings as django_settings

from mailboxes.actions import outbound, queueing
from relay.models import OutboundRecipient, State
from tests.dns_server import DnsServer
from tests.integration.test_relay_delivery import message
from tests.relay_support import MX1, RELAY_QUEUE, CeleryWorker, Sinks, wait_for, worker_env

pytestmark = [pytest.mark.xdist_group("relay-recovery"), pytest.mark.slow]


@pytest.fixture
def relay(transactional_db, settings, make_account, tmp_path) -> Iterator[tuple[Sinks, CeleryWorker]]:
    dns_server = DnsServer()
    sinks = Sinks()
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    dns_server.add("example.net", "MX", "10 mx1.example.net.")
    dns_server.add("mx1.example.net", "A", MX1)
    make_account("alice@example.com")
    # Start from an empty queue: a task an earlier test sent just before its worker stopped is still there.
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(RELAY_QUEUE)
    worker = CeleryWorker(tmp_path / "worker", worker_env(dns_server, sinks))
    yield sinks, worker
    worker.stop()
    sinks.stop_all()
    dns_server.close()


def test_worker_killed_during_delivery_then_restarted_delivers_exactly_once(relay):
    sinks, worker = relay
    sink = sinks.start(MX1)
    sink.stall_seconds = 2.0  # the first RCPT hangs, so the kill lands in the middle of the SMTP transaction
    worker.start()
    queueing.enqueue(message(), "alice@example.com", ["bob@example.net"], author_domain="example.com")

    wait_for(lambda: sink.rcpt_started)
    worker.kill()
    row = OutboundRecipient.objects.get()
    assert (row.state, row.attempts) == (State.QUEUED, 0), "the killed attempt recorded nothing"
    assert row.claimed_until is not None
    sink.stall_seconds = 0.0
    worker.start()

    wait_for(lambda: OutboundRecipient.objects.filter(state=State.DELIVERED).exists())
    row.refresh_from_db()
    assert row.attempts == 1
    # A duplicate could only come from a later sweep or a stale task: give two sweep intervals to show one.
    time.sleep(2.5)
    assert len(sink.messages) == 1
    outbound.retry_now([row.pk])
    assert len(sink.messages) == 1


def test_broker_flushed_while_messages_are_queued_then_the_sweep_delivers_them(relay):
    sinks, worker = relay
    sink = sinks.start(MX1)
    for number in range(3):
        queueing.enqueue(
            message(f"number {number}"), "alice@example.com", [f"user{number}@example.net"], author_domain="example.com"
        )
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    assert broker.llen(RELAY_QUEUE) == 3, "each message's attempt was sent to the broker on commit"
    broker.delete(RELAY_QUEUE)  # the broker loses everything it held for this queue
    assert OutboundRecipient.objects.filter(state=State.QUEUED).count() == 3

    worker.start()
    wait_for(lambda: OutboundRecipient.objects.filter(state=State.DELIVERED).count() == 3)
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == [f"user{n}@example.net" for n in range(3)]
