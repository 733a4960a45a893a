"""A message submitted on the submission port to an external address reaches the remote MX, DKIM-signed."""

from __future__ import annotations

import smtplib

import pytest

from mailboxes.models import Message
from relay.models import OutboundRecipient, State
from tests.conftest import PASSWORD
from tests.integration.test_relay_delivery import message, publish_dkim_key, verify_with_dns
from tests.relay_support import MX1, wait_for

pytestmark = [pytest.mark.xdist_group("relay-submission"), pytest.mark.slow]


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
