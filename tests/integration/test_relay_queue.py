"""The queue's writers and the admin, run in-process against the real database, DNS server and sinks.

Attempts are made by calling the task function directly (`db` tests never commit, so nothing reaches the
broker); the tests with a worker process are in test_relay_delivery.py.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
from django.utils import timezone

from mailboxes import actions
from mailboxes.actions import outbound, queueing
from mailboxes.models import Message, Role
from mailcore.dsn import Requests
from relay import dkim, tasks
from relay.models import DkimKey, OutboundMessage, OutboundRecipient, State
from tests.dns_server import DnsServer
from tests.integration.test_relay_delivery import message
from tests.relay_support import MX1, Sinks

pytestmark = pytest.mark.xdist_group("relay-queue")


@pytest.fixture
def relay(db, settings, make_account, relay_state) -> Iterator[Sinks]:
    dns_server = DnsServer()
    sinks = Sinks()
    settings.MAILSITE_DNS_NAMESERVERS = [(dns_server.host, dns_server.port)]
    settings.MAILSITE_DNS_TIMEOUT = 1.0
    settings.MAILSITE_RELAY_PORT = sinks.port
    settings.MAILSITE_RELAY_TIMEOUT = 2.0
    dns_server.add("example.net", "MX", "10 mx1.example.net.")
    dns_server.add("mx1.example.net", "A", MX1)
    make_account("alice@example.com")
    yield sinks
    sinks.stop_all()
    dns_server.close()


def inbox(address: str) -> list[bytes]:
    rows = Message.objects.filter(account__address=address, mailbox__role=Role.INBOX).order_by("uid")
    return [bytes(row.body.raw) for row in rows.select_related("body")]


def queued_at(age: datetime.timedelta, rcpt: str = "bob@example.net", sender: str = "alice@example.com") -> int:
    outbound = queueing.enqueue(message(), sender, [rcpt], author_domain=sender.rpartition("@")[2] or None)
    OutboundMessage.objects.filter(pk=outbound.pk).update(created=timezone.now() - age)
    return outbound.pk


def test_gives_up_after_the_maximum_age_with_a_dsn(relay):
    message_id = queued_at(datetime.timedelta(days=5, minutes=1))  # nothing listens on MX1: refused
    tasks.attempt(message_id, "example.net")

    row = OutboundRecipient.objects.get()
    assert (row.state, row.status, row.last_code) == (State.BOUNCED, "5.4.7", None)
    [dsn] = inbox("alice@example.com")
    assert b"Action: failed" in dsn
    assert b"Status: 5.4.7" in dsn
    assert b"Diagnostic-Code: X-Mailsite; " + MX1.encode() in dsn


def test_delay_warning_once_after_four_hours(relay):
    message_id = queued_at(datetime.timedelta(hours=4, minutes=1))
    tasks.attempt(message_id, "example.net")

    row = OutboundRecipient.objects.get()
    assert (row.state, row.delay_warned, row.status) == (State.DEFERRED, True, "4.4.1")
    [warning] = inbox("alice@example.com")
    assert b"Subject: Delayed Mail (still being retried)" in warning
    assert b"Action: delayed" in warning
    assert b"Will-Retry-Until: " in warning

    OutboundRecipient.objects.update(next_attempt=timezone.now())
    tasks.attempt(message_id, "example.net")
    assert OutboundRecipient.objects.get().attempts == 2
    assert len(inbox("alice@example.com")) == 1, "the sender is warned once"


def test_no_bounce_for_a_bounce(relay):
    relay.start(MX1).rcpt_replies["bob@example.net"] = "550 5.1.1 unknown"
    message_id = queued_at(datetime.timedelta(0), sender="")
    tasks.attempt(message_id, "example.net")

    assert OutboundRecipient.objects.get().state == State.BOUNCED
    assert not Message.objects.exists()
    assert OutboundMessage.objects.count() == 1, "no DSN was queued either"


def test_a_held_recipient_is_not_attempted_until_released(relay):
    sink = relay.start(MX1)
    message_id = queued_at(datetime.timedelta(0))
    row = OutboundRecipient.objects.get()
    assert outbound.hold([row.pk]) == 1
    tasks.attempt(message_id, "example.net")
    assert not sink.messages
    assert outbound.retry_now([row.pk]) == 0, "retry now leaves held mail held"
    assert outbound.release([row.pk]) == 1
    tasks.attempt(message_id, "example.net")
    assert OutboundRecipient.objects.get().state == State.DELIVERED
    assert len(sink.messages) == 1


def test_submit_delivers_locally_and_queues_remote_and_forwarded_addresses_in_one_transaction(relay, make_account):
    make_account("carol@example.com")
    actions.create_alias("team@example.com", ["carol@example.com", "dave@example.org"])
    report = actions.submit(
        message(), "alice@example.com", ["team@example.com", "bob@example.net"], author_domain="example.com"
    )

    assert report.results == {"team@example.com": "local", "bob@example.net": "remote"}
    assert len(inbox("carol@example.com")) == 1
    assert sorted(OutboundRecipient.objects.values_list("address", flat=True)) == [
        "bob@example.net",
        "dave@example.org",
    ]
    outbound = OutboundMessage.objects.get()
    assert outbound.sender == "alice@example.com"
    assert bytes(outbound.raw).startswith(b"DKIM-Signature: ")


def test_alias_forward_from_mx_is_queued_with_the_original_sender_unsigned(relay):
    actions.create_alias("info@example.com", ["zed@example.org"])
    raw = b"From: someone@example.net\r\nTo: info@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    actions.deliver_many([(raw, "someone@example.net", ["info@example.com"])])

    outbound = OutboundMessage.objects.get()
    assert outbound.sender == "someone@example.net"
    assert bytes(outbound.raw) == raw, "mail from a foreign domain is not signed by us"
    assert OutboundRecipient.objects.get().address == "zed@example.org"


def test_alias_forward_keeps_ret_envid_and_requiretls(relay):
    actions.create_alias("info@example.com", ["zed@example.org"])
    raw = b"From: someone@example.net\r\nTo: info@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    asked = Requests(ret="FULL", envid="E2", require_tls=True, notify={"info@example.com": "NEVER"})
    actions.deliver_many([(raw, "someone@example.net", ["info@example.com"])], None, [], [asked])

    outbound = OutboundMessage.objects.get()
    assert (outbound.dsn_ret, outbound.dsn_envid, outbound.require_tls) == ("FULL", "E2", True)
    # NOTIFY belongs to the RCPT, not to the forward's new address
    assert OutboundRecipient.objects.get().dsn_notify == ""


@pytest.fixture
def admin_client_for(client, make_account):
    admin = make_account("admin@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_admin_queue_view_and_actions(relay, admin_client_for):
    relay.start(MX1).rcpt_replies["bob@example.net"] = "451 4.7.1 greylisted, come back later"
    message_id = queued_at(datetime.timedelta(0))
    tasks.attempt(message_id, "example.net")
    row = OutboundRecipient.objects.get()

    page = admin_client_for.get("/admin/relay/outboundrecipient/").content.decode()
    assert "bob@example.net" in page
    assert "deferred" in page
    assert "451 4.7.1 greylisted, come back later" in page

    def act(action: str) -> None:
        response = admin_client_for.post(
            "/admin/relay/outboundrecipient/", {"action": action, "_selected_action": [row.pk]}
        )
        assert response.status_code == 302

    act("hold")
    assert OutboundRecipient.objects.get().state == State.HELD
    act("release")
    assert OutboundRecipient.objects.get().state == State.DEFERRED
    OutboundRecipient.objects.update(next_attempt=timezone.now() + datetime.timedelta(hours=1))
    act("retry_now")
    assert OutboundRecipient.objects.get().next_attempt <= timezone.now()
    detail = admin_client_for.get(f"/admin/relay/outboundrecipient/{row.pk}/change/").content.decode()
    assert "mx1.example.net" in detail

    act("delete_with_bounce")
    assert not OutboundRecipient.objects.exists()
    assert not OutboundMessage.objects.exists()
    [dsn] = inbox("alice@example.com")
    assert b"deleted from the queue by the administrator" in dsn
    assert b"Status: 5.0.0" in dsn


def test_admin_shows_the_dns_records_to_publish(relay, admin_client_for):
    queueing.enqueue(message(), "alice@example.com", ["bob@example.net"], author_domain="example.com")
    key = DkimKey.objects.get(domain__name="example.com")
    page = admin_client_for.get(f"/admin/relay/dkimkey/{key.pk}/change/").content.decode()
    name, value = dkim.txt_record(key)
    assert name == "mailsite._domainkey.example.com"
    assert value.startswith("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")  # RSA 2048
    assert value in page
    assert "v=spf1 mx a:mx.mailsite.test ~all" in page
    assert "_dmarc.example.com" in page
    assert "v=DMARC1; p=quarantine" in page
