"""Relay sessions end to end: connection reuse, per-destination concurrency, and broken sessions, with a real
Celery worker on Redis, the loopback DNS server and aiosmtpd sinks over real sockets. The worker logs JSON and
writes its metrics files into its own data directory, which the tests parse.

The worker's settings: a session carries at most 4 messages; example.net takes 1 session at a time and
example.org 2. The sweep waits 60 seconds before it re-sends a task, so it delivers nothing in these tests:
what a session leaves is sent on by the relay's own tasks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction
from prometheus_client.parser import text_string_to_metric_families

from mailboxes.actions import queueing
from relay import slots
from relay.models import OPEN_STATES, Attempt, OutboundRecipient, State
from smtpd.message import received_field
from tests.relay_support import RELAY_QUEUE, CeleryWorker, Sinks, address, wait_for, worker_env

pytestmark = [pytest.mark.xdist_group("relay-sessions"), pytest.mark.slow]

MX_NET, MX_ORG = address(4), address(5)
PER_SESSION = 4


def message(number: int, to: str) -> bytes:
    return (
        f"From: Alice <alice@example.com>\r\nTo: {to}\r\nSubject: number {number}\r\n"
        f"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nMessage-ID: <m{number}@example.com>\r\n\r\nHello {number}\r\n"
    ).encode()


def queue(count: int, domain: str) -> list[str]:
    """`count` messages to one recipient each at `domain`, queued in one transaction (their tasks all at once)."""
    recipients = [f"user{number}@{domain}" for number in range(count)]
    with transaction.atomic():
        for number, rcpt in enumerate(recipients):
            queueing.enqueue(message(number, rcpt), "alice@example.com", [rcpt], author_domain="example.com")
    return recipients


def delivered(recipients: list[str]) -> bool:
    return OutboundRecipient.objects.filter(address__in=recipients, state=State.DELIVERED).count() == len(recipients)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, dns_server, sinks, tmp_path_factory) -> Iterator[CeleryWorker]:
    env = {
        **worker_env(dns_server, sinks),
        "MAILSITE_RELAY_TIMEOUT": "3",
        "MAILSITE_RELAY_CLAIM_TIMEOUT": "5s",
        "MAILSITE_RELAY_SWEEP_GRACE": "60s",
        "MAILSITE_RELAY_REUSE_MESSAGES": str(PER_SESSION),
        "MAILSITE_RELAY_DESTINATION_CONCURRENCY": "example.net=1, example.org=2",
        "MAILSITE_LOG_FORMAT": "json",
    }
    workdir = tmp_path_factory.mktemp("relay-sessions")
    # Its own metrics files (this process may have set the variable for itself, and the worker inherits it).
    env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics" / "worker-host")
    with django_db_blocker.unblock():
        process = CeleryWorker(workdir, env, concurrency=3)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def relay(transactional_db, settings, worker, dns_server, sinks, make_account) -> Iterator[Sinks]:
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    worker.revive()  # no destination left dead by the test before
    dns_server.clear()
    dns_server.add("example.net", "MX", "10 mx.example.net.")
    dns_server.add("mx.example.net", "A", MX_NET)
    dns_server.add("example.org", "MX", "10 mx.example.org.")
    dns_server.add("mx.example.org", "A", MX_ORG)
    make_account("alice@example.com")
    yield sinks
    sinks.quiet()
    sinks.stop_all()


def subjects(sinks: Sinks) -> Counter[str]:
    return Counter(
        line.split(b": ", 1)[1].decode()
        for received in sinks.received()
        for line in received.content.split(b"\r\n")
        if line.startswith(b"Subject: ")
    )


def test_queued_messages_share_sessions_of_at_most_the_set_number(relay):
    sink = relay.start(MX_NET)
    recipients = queue(6, "example.net")

    wait_for(lambda: delivered(recipients))
    assert subjects(relay) == Counter(f"number {n}" for n in range(6))
    # One session at a time to example.net: the first carries 4 messages (the limit), the next the other 2.
    assert sink.sessions == 2, (sink.per_session, sink.most_open)
    assert sorted(sink.per_session.values()) == [2, PER_SESSION]
    assert sink.most_open == 1
    assert all(received.tls for received in sink.messages), "each session uses STARTTLS once, then RSET"
    assert Attempt.objects.filter(outcome="delivered").count() == 6
    wait_for(lambda: sink.open_sessions == 0)  # each session ended with QUIT


def test_a_session_cut_in_data_loses_and_duplicates_nothing(relay):
    sink = relay.start(MX_NET)
    sink.drop_after = 2  # every session takes two messages, then cuts the third after its data, with no reply
    recipients = queue(6, "example.net")

    wait_for(lambda: delivered(recipients))
    assert subjects(relay) == Counter(f"number {n}" for n in range(6)), "each message stored exactly once"
    assert sink.dropped >= 2
    assert set(sink.per_session.values()) <= {0, 1, 2}
    for rcpt in recipients:
        # Recorded delivered once, only on the 250 of the session that stored it.
        attempts = Attempt.objects.filter(recipient__address=rcpt)
        assert [a.outcome for a in attempts if a.outcome == "delivered"] == ["delivered"]
        assert all(a.code == 250 for a in attempts if a.outcome == "delivered")


def test_a_session_closed_while_idle_is_replaced(relay):
    sink = relay.start(MX_NET)
    sink.hangup_after = 3  # the server drops the session at the RSET before a fourth message
    recipients = queue(6, "example.net")

    wait_for(lambda: delivered(recipients))
    assert subjects(relay) == Counter(f"number {n}" for n in range(6))
    assert sink.dropped == 1
    assert sorted(sink.per_session.values()) == [3, 3]
    assert all(row.attempts == 1 for row in OutboundRecipient.objects.filter(address__in=recipients))


def test_at_most_the_domains_limit_of_sessions_at_once(relay):
    sink = relay.start(MX_ORG)
    sink.stall_seconds = 0.2  # sessions overlap: three worker processes want example.org at once
    recipients = queue(9, "example.org")

    wait_for(lambda: delivered(recipients), timeout=30)
    assert subjects(relay) == Counter(f"number {n}" for n in range(9))
    assert sink.most_open <= 2
    assert sink.sessions >= 3  # 9 messages, 4 per session


def test_a_domain_whose_slots_are_taken_waits_for_one(relay):
    """Other processes (here: this test's own connections) hold both of example.org's slots: the message's
    task ends without sending it, and the next session to the domain takes it along."""
    sink = relay.start(MX_ORG)
    key = slots._domain_key("example.org")
    dsn = connection.settings_dict
    holders = [
        psycopg.connect(host=dsn["HOST"] or "127.0.0.1", port=dsn["PORT"] or 5432, user="postgres", dbname=dsn["NAME"])
        for _ in range(2)
    ]
    try:
        for number, holder in enumerate(holders):
            holder.execute("SELECT pg_advisory_lock(%s, %s)", [key, number])
        recipients = queue(1, "example.org")
        with pytest.raises(AssertionError):
            wait_for(lambda: sink.sessions, timeout=3)
        assert OutboundRecipient.objects.get(address=recipients[0]).state == State.QUEUED
        holders[1].close()  # its advisory lock goes with its connection, as a killed worker's does
        later = ["late@example.org"]
        queueing.enqueue(message(9, later[0]), "alice@example.com", later, author_domain="example.com")
        wait_for(lambda: delivered(recipients + later))
        assert sink.sessions == 1
        assert sorted(sink.per_session.values()) == [2], "the waiting message went with the later one"
    finally:
        for holder in holders:
            holder.close()


def json_lines(worker: CeleryWorker, event: str) -> list[dict]:
    lines = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["event"] == event:
                lines.append(record)
    return lines


def relay_counts(worker: CeleryWorker, settings) -> dict[tuple[str, str, str], float]:
    """The worker's relay counters as /metrics shows them: (metric, destination, result) -> value."""
    settings.MAILSITE_METRICS_DIR = Path(worker.env["MAILSITE_DATA_DIR"]) / "metrics"
    from ops import metrics

    return {
        (sample.name, sample.labels["destination"], sample.labels.get("result", "")): sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
        if sample.name in ("mailsite_relay_results_total", "mailsite_relay_sessions_total")
    }


def test_each_recipient_gets_a_json_log_line_and_a_metric(relay, worker, settings):
    relay.start(MX_NET).rcpt_replies["nobody@example.net"] = "550 5.1.1 no such user"
    before = relay_counts(worker, settings)
    received = received_field(
        helo="client.example.com",
        ip="192.0.2.1",
        hostname="mx.mailsite.test",
        protocol="ESMTPSA",
        queue_id="0A1B2C3D4E5F",
        recipients=["bob@example.net"],
    )
    queued = queueing.enqueue(
        received + message(1, "bob@example.net"),
        "alice@example.com",
        ["bob@example.net", "nobody@example.net"],
        author_domain="example.com",
    )
    wait_for(lambda: not OutboundRecipient.objects.filter(message=queued, state__in=OPEN_STATES).exists())
    wait_for(lambda: [line for line in json_lines(worker, "relay bounced") if line["relay_id"] == str(queued.pk)])

    [line] = [line for line in json_lines(worker, "relay delivered") if line["relay_id"] == str(queued.pk)]
    assert line["queue_id"] == "0A1B2C3D4E5F", "the id the SMTP listener gave the message"
    assert (line["to"], line["from"], line["host"], line["code"]) == (
        "bob@example.net",
        "alice@example.com",
        "mx.example.net",
        "250",
    )
    assert (line["status"], line["attempts"], line["level"], line["logger"]) == ("2.0.0", "1", "INFO", "mail.relay")
    [bounce] = [line for line in json_lines(worker, "relay bounced") if line["relay_id"] == str(queued.pk)]
    assert (bounce["queue_id"], bounce["to"], bounce["code"], bounce["status"], bounce["level"]) == (
        "0A1B2C3D4E5F",
        "nobody@example.net",
        "550",
        "5.1.1",
        "WARNING",
    )
    assert bounce["reply"] == "5.1.1 no such user"

    after = relay_counts(worker, settings)
    changed = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    assert changed == {
        ("mailsite_relay_results_total", "example.net", "delivered"): 1,
        ("mailsite_relay_results_total", "example.net", "bounced"): 1,
        ("mailsite_relay_sessions_total", "example.net", ""): 1,
    }
