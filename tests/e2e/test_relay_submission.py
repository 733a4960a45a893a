"""A message submitted on the submission port to an external address reaches the remote MX, DKIM-signed."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from mailboxes.models import Message
from relay.models import OutboundRecipient, State
from tests.conftest import PASSWORD
from tests.dns_server import DnsServer
from tests.integration.test_relay_delivery import MX1, message, publish_dkim_key, verify_with_dns, worker_env
from tests.relay_support import RELAY_QUEUE, CeleryWorker, Sinks, wait_for

pytestmark = [pytest.mark.xdist_group("relay-submission"), pytest.mark.slow]


@pytest.fixture
def outside(transactional_db, settings, tmp_path) -> Iterator[tuple[DnsServer, Sinks]]:
    """The remote world: example.net's MX on a loopback sink, and a relay worker that can reach it."""
    dns_server = DnsServer()
    dns_server.add("example.net", "MX", "10 mx1.example.net.")
    dns_server.add("mx1.example.net", "A", MX1)
    sinks = Sinks()
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    worker = CeleryWorker(tmp_path / "worker", worker_env(dns_server, sinks))
    worker.start()
    yield dns_server, sinks
    worker.stop()
    sinks.stop_all()
    dns_server.close()


def test_submitted_mail_to_an_external_address_arrives_with_a_valid_dkim_signature(
    outside, listeners, make_account, tls_client_context
):
    dns_server, sinks = outside
    sink = sinks.start(MX1)
    make_account("alice@example.com")
    make_account("carol@example.com")
    port = listeners("smtpd")["submission"].port

    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls(context=tls_client_context)
        client.login("alice@example.com", PASSWORD)
        refused = client.sendmail(
            "alice@example.com", ["bob@example.net", "carol@example.com"], message("Over the wall")
        )
    assert refused == {}

    wait_for(lambda: OutboundRecipient.objects.filter(address="bob@example.net", state=State.DELIVERED).exists())
    [received] = sink.messages
    assert received.mail_from == "alice@example.com"
    assert received.rcpt_tos == ["bob@example.net"]
    assert received.tls
    assert b"Subject: Over the wall" in received.content
    assert b"Received: " in received.content, "the submission listener's trace header travels on"
    publish_dkim_key(dns_server)
    assert verify_with_dns(received.content, dns_server)
    assert Message.objects.filter(account__address="carol@example.com").count() == 1, "local copy stored at once"
