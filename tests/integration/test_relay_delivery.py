"""Outbound delivery end to end inside the relay: queue rows, a real Celery worker on Redis, a DNS server and
aiosmtpd sinks on loopback. One worker serves the whole module (short retry schedule: 1 second)."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy

import dkim as dkimpy
import dns.nameserver
import dns.resolver
import pytest

from mailboxes.actions import queueing
from mailboxes.models import Message, Role
from mailcore.dsn import Requests
from relay import dkim, tasks
from relay.models import Attempt, DkimKey, OutboundRecipient, State
from tests.dns_server import DnsServer
from tests.relay_support import MX1, MX2, RELAY_QUEUE, CeleryWorker, Sinks, wait_for, worker_env

pytestmark = [pytest.mark.xdist_group("relay-delivery"), pytest.mark.slow]


def message(subject: str = "Hello", to: str = "bob@example.net") -> bytes:
    return (
        f"From: Alice <alice@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHi Bob,\r\n.leading dot survives\r\n"
    ).encode()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, dns_server, sinks, tmp_path_factory) -> Iterator[CeleryWorker]:
    with django_db_blocker.unblock():
        process = CeleryWorker(tmp_path_factory.mktemp("relay-worker"), worker_env(dns_server, sinks))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def relay(transactional_db, settings, worker, dns_server, sinks, make_account, relay_state) -> Iterator[Sinks]:
    """A clean DNS zone and sinks for each test; alice@example.com is the local sender."""
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    worker.revive()  # no destination left dead by the test before
    settings.MAILSITE_DNS_NAMESERVERS = [(dns_server.host, dns_server.port)]
    settings.MAILSITE_DNS_TIMEOUT = 1.0
    settings.MAILSITE_RELAY_PORT = sinks.port
    dns_server.clear()
    dns_server.add("example.net", "MX", "10 mx1.example.net.", "20 mx2.example.net.")
    dns_server.add("mx1.example.net", "A", MX1)
    dns_server.add("mx2.example.net", "A", MX2)
    make_account("alice@example.com")
    yield sinks
    sinks.stop_all()


def state_of(address: str) -> OutboundRecipient:
    return OutboundRecipient.objects.get(address=address)


def settled(address: str, *states: State) -> bool:
    return OutboundRecipient.objects.filter(address=address, state__in=states).exists()


def inbox(address: str) -> list[Message]:
    return list(Message.objects.filter(account__address=address, mailbox__role=Role.INBOX).order_by("uid"))


def publish_dkim_key(dns_server: DnsServer) -> None:
    name, value = dkim.txt_record(DkimKey.objects.get(domain__name="example.com"))
    # A TXT string holds at most 255 bytes (RFC 1035 3.3.14); longer records are split into several strings.
    chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    dns_server.add(name, "TXT", chunks)


def verify_with_dns(raw: bytes, dns_server: DnsServer) -> bool:
    def txt(name: bytes, timeout: int = 5) -> bytes:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(dns_server.host, dns_server.port)]
        answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        return b"".join(answer.rrset[0].strings)

    return dkimpy.verify(raw, dnsfunc=txt)


def test_delivered_on_first_mx_over_starttls_with_a_dkim_signature(relay, dns_server):
    mx1 = relay.start(MX1)
    relay.start(MX2)
    queued = queueing.enqueue(
        message(), "alice@example.com", ["bob@example.net", "carol@example.net"], author_domain="example.com"
    )

    wait_for(lambda: OutboundRecipient.objects.filter(state=State.DELIVERED).count() == 2)
    assert len(mx1.messages) == 1, "both recipients travel in one transaction"
    received = mx1.messages[0]
    assert received.mail_from == "alice@example.com"
    assert sorted(received.rcpt_tos) == ["bob@example.net", "carol@example.net"]
    assert received.tls, "STARTTLS was offered, so it is used"
    assert received.helo == "mx.mailsite.test"
    assert b"\r\n.leading dot survives\r\n" in received.content
    assert received.content == bytes(queued.raw)
    assert received.content.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;")
    publish_dkim_key(dns_server)
    assert verify_with_dns(received.content, dns_server)
    assert not verify_with_dns(received.content.replace(b"Hi Bob", b"Hi Eve"), dns_server)
    row = state_of("bob@example.net")
    assert (row.attempts, row.last_host, row.last_code) == (1, "mx1.example.net", 250)
    assert Attempt.objects.filter(recipient=row).count() == 1

    # Idempotent: running the attempt again (a duplicate task) sends nothing.
    tasks.attempt(queued.pk, "example.net")
    assert len(mx1.messages) == 1


def test_first_mx_refuses_the_connection_second_accepts(relay):
    mx2 = relay.start(MX2)  # nothing listens on MX1: connection refused
    queueing.enqueue(message(), "alice@example.com", ["bob@example.net"], author_domain="example.com")

    wait_for(lambda: settled("bob@example.net", State.DELIVERED))
    assert len(mx2.messages) == 1
    row = state_of("bob@example.net")
    assert (row.attempts, row.last_host) == (1, "mx2.example.net")


def test_temporary_failure_is_retried_and_then_delivered(relay):
    mx1 = relay.start(MX1)
    mx1.data_replies.append("451 4.3.0 try again later")
    relay.start(MX2).data_replies.append("452 4.3.1 insufficient storage")
    queueing.enqueue(message(), "alice@example.com", ["bob@example.net"], author_domain="example.com")

    wait_for(lambda: settled("bob@example.net", State.DELIVERED))
    attempts = list(Attempt.objects.filter(recipient__address="bob@example.net").order_by("started"))
    assert [(a.code, a.outcome) for a in attempts] == [(452, "deferred"), (250, "delivered")]
    assert len(relay.received()) == 1
    assert not inbox("alice@example.com"), "no bounce for a message that was delivered"


def test_only_failed_recipients_are_retried(relay):
    mx1 = relay.start(MX1)
    mx1.rcpt_replies["carol@example.net"] = "450 4.2.1 mailbox busy"
    queueing.enqueue(
        message(), "alice@example.com", ["bob@example.net", "carol@example.net"], author_domain="example.com"
    )

    wait_for(lambda: settled("bob@example.net", State.DELIVERED) and state_of("carol@example.net").attempts >= 2)
    mx1.rcpt_replies.clear()
    wait_for(lambda: settled("carol@example.net", State.DELIVERED))
    assert [m.rcpt_tos for m in mx1.messages] == [["bob@example.net"], ["carol@example.net"]]
    assert state_of("bob@example.net").attempts == 1


def test_permanent_failure_puts_a_dsn_in_the_senders_inbox(relay):
    mx1 = relay.start(MX1)
    mx1.rcpt_replies["nobody@example.net"] = "550 5.1.1 no such user here"
    queueing.enqueue(
        message("Lunch", to="nobody@example.net"),
        "alice@example.com",
        ["nobody@example.net", "bob@example.net"],
        author_domain="example.com",
    )

    wait_for(lambda: settled("nobody@example.net", State.BOUNCED) and inbox("alice@example.com"))
    assert settled("bob@example.net", State.DELIVERED)
    [bounce] = inbox("alice@example.com")
    raw = bytes(bounce.body.raw)
    assert raw.startswith(b"Return-Path: <>\r\n"), "a DSN has the null sender"
    report = message_from_bytes(raw, policy=email_policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    human, status, headers = report.get_payload()
    assert "nobody@example.net" in human.get_content()
    assert status.get_content_type() == "message/delivery-status"
    status_text = status.as_bytes().decode()
    assert "Final-Recipient: rfc822; nobody@example.net" in status_text
    assert "Action: failed" in status_text
    assert "Status: 5.1.1" in status_text
    assert "Remote-MTA: dns; mx1.example.net" in status_text
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such user here" in status_text
    assert "bob@example.net" not in status_text
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"Subject: Lunch" in headers.as_bytes()


@pytest.mark.parametrize(
    ("zone", "status", "reason"),
    [
        ({}, "5.1.2", "does not exist (NXDOMAIN)"),
        ({("example.org", "MX"): "0 ."}, "5.1.10", "null MX"),
    ],
    ids=["nxdomain", "null-mx"],
)
def test_domains_that_take_no_mail_bounce_at_once(relay, dns_server, zone, status, reason):
    for (name, rdtype), value in zone.items():
        dns_server.add(name, rdtype, value)
    queueing.enqueue(
        message(to="dave@example.org"), "alice@example.com", ["dave@example.org"], author_domain="example.com"
    )

    wait_for(lambda: inbox("alice@example.com"))
    row = state_of("dave@example.org")
    assert (row.state, row.attempts, row.status) == (State.BOUNCED, 1, status)
    assert reason in row.last_reply
    dsn = bytes(inbox("alice@example.com")[0].body.raw).decode()
    assert f"Status: {status}" in dsn
    assert "Diagnostic-Code: X-Mailsite;" in dsn


def test_servfail_defers_until_dns_answers(relay, dns_server):
    relay.start(MX1)
    dns_server.servfail.add("example.net")
    queueing.enqueue(message(), "alice@example.com", ["bob@example.net"], author_domain="example.com")

    wait_for(lambda: state_of("bob@example.net").attempts >= 2)
    row = state_of("bob@example.net")
    assert row.state == State.DEFERRED
    assert (row.status, row.last_code) == ("4.4.3", None)
    assert "SERVFAIL" in row.last_reply
    assert not relay.received()
    dns_server.servfail.clear()
    wait_for(lambda: settled("bob@example.net", State.DELIVERED))
    assert len(relay.received()) == 1
    assert not inbox("alice@example.com")


def test_no_mx_means_the_domains_own_address(relay, dns_server):
    dns_server.add("example.org", "A", MX2)
    sink = relay.start(MX2)
    queueing.enqueue(
        message(to="erin@example.org"), "alice@example.com", ["erin@example.org"], author_domain="example.com"
    )

    wait_for(lambda: settled("erin@example.org", State.DELIVERED))
    assert sink.messages[0].rcpt_tos == ["erin@example.org"]
    assert state_of("erin@example.org").last_host == "example.org"


# --- The sender's DSN requests (RFC 3461) -------------------------------------------------------------------------

ASKED = Requests(
    ret="HDRS",
    envid="QQ314159+1",
    notify={"bob@example.net": "SUCCESS,FAILURE"},
    orcpt={"bob@example.net": "rfc822;Bob+Lists@example.net"},
)


def test_dsn_requests_go_on_to_a_next_hop_that_offers_dsn_and_we_send_no_notice(relay):
    mx1 = relay.start(MX1)
    mx1.extensions = ("DSN",)
    queueing.enqueue(message(), "alice@example.com", ["bob@example.net"], author_domain=None, requests=ASKED)

    wait_for(lambda: settled("bob@example.net", State.DELIVERED))
    # RFC 3461 5.2: passed on, ENVID and ORCPT as xtext
    assert mx1.parameters == [
        ["RET=HDRS", "ENVID=QQ314159+2B1", "NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bob+2BLists@example.net"]
    ]
    assert inbox("alice@example.com") == []  # the next hop sends the success notice


def test_success_through_a_next_hop_without_dsn_is_reported_relayed(relay):
    relay.start(MX1)  # aiosmtpd offers no DSN
    queueing.enqueue(message("Tea"), "alice@example.com", ["bob@example.net"], author_domain=None, requests=ASKED)

    wait_for(lambda: inbox("alice@example.com"))
    [notice] = inbox("alice@example.com")
    report = message_from_bytes(bytes(notice.body.raw), policy=email_policy.default)
    assert report["Subject"] == "Successful Mail Delivery Report"
    _, status, returned = report.get_payload()
    text = status.as_bytes().decode()
    assert "Original-Envelope-Id: QQ314159+1" in text  # RFC 3464 2.2.1
    assert "Original-Recipient: rfc822;Bob+Lists@example.net" in text  # RFC 3464 2.3.1
    assert "Action: relayed" in text  # RFC 3461 5.2.2
    assert "Status: 2.0.0" in text
    assert returned.get_content_type() == "text/rfc822-headers"


@pytest.mark.parametrize(
    ("notify", "ret", "notice"),
    [
        ("NEVER", "", None),
        ("SUCCESS", "FULL", None),
        ("FAILURE", "FULL", "message/rfc822"),
        ("", "", "text/rfc822-headers"),
    ],
)
def test_notify_and_ret_decide_the_failure_notice(relay, notify, ret, notice):
    mx1 = relay.start(MX1)
    mx1.rcpt_replies["nobody@example.net"] = "550 5.1.1 no such user here"
    requests = Requests(ret=ret, notify={"nobody@example.net": notify} if notify else {})
    queueing.enqueue(
        message("Lunch", to="nobody@example.net"),
        "alice@example.com",
        ["nobody@example.net", "bob@example.net"],
        author_domain=None,
        requests=requests,
    )

    wait_for(lambda: settled("nobody@example.net", State.BOUNCED) and settled("bob@example.net", State.DELIVERED))
    if notice is None:
        relay.quiet()
        assert inbox("alice@example.com") == []
        return
    wait_for(lambda: inbox("alice@example.com"))
    [bounce] = inbox("alice@example.com")
    *_, returned = message_from_bytes(bytes(bounce.body.raw), policy=email_policy.default).get_payload()
    assert returned.get_content_type() == notice
    assert (b".leading dot survives" in returned.as_bytes()) == (notice == "message/rfc822")
