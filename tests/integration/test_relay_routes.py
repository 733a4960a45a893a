"""Routes (MAILSITE_RELAY_ROUTES) and dead destinations over real sockets: the relay's task runs in this process
against the loopback DNS server, aiosmtpd sinks requiring AUTH over STARTTLS or implicit TLS with certificates
from a test CA, PostgreSQL and Redis."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator

import pytest
import redis
import trustme
from django.conf import settings as django_settings
from django.utils import timezone

from mailboxes.actions import outbound, queueing
from relay import dead, tasks
from relay.models import Attempt, OutboundRecipient, State
from relay.routes import parse_routes
from tests.relay_support import RELAY_QUEUE, Sinks, address

pytestmark = pytest.mark.xdist_group("relay-routes")

SMARTHOST, SUBMISSION_HOST, DEAD_MX = address(40), address(41), address(42)
LOGIN = ("relay-user", "pa:ss word")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def relay(transactional_db, settings, dns_server, sinks, ca, tmp_path, make_account, relay_state) -> Iterator[Sinks]:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    settings.MAILSITE_RELAY_CA_FILE = ca_file
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    settings.MAILSITE_RELAY_PORT = sinks.port
    settings.MAILSITE_RELAY_TIMEOUT = 3
    settings.MAILSITE_RELAY_MTA_STS = False
    settings.MAILSITE_DNS_NAMESERVERS = [(dns_server.host, dns_server.port)]
    dns_server.clear()
    dns_server.queries.clear()
    dns_server.add("smtp.provider.test", "A", SMARTHOST)
    dns_server.add("submission.provider.test", "A", SUBMISSION_HOST)
    make_account("alice@example.com")
    yield sinks
    sinks.quiet()
    sinks.stop_all()
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(RELAY_QUEUE)


def context(ca: trustme.CA, name: str):
    import ssl

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(tls)
    return tls


def send(rcpt: str) -> OutboundRecipient:
    """Queue a message to `rcpt` and run the relay's task for it here; the recipient's row afterwards."""
    raw = f"From: alice@example.com\r\nTo: {rcpt}\r\nSubject: routed\r\n\r\nHi\r\n".encode()
    queued = queueing.enqueue(raw, "alice@example.com", [rcpt], author_domain="example.com")
    assert queued is not None
    tasks.attempt(queued.pk, rcpt.rpartition("@")[2])
    return OutboundRecipient.objects.get(message=queued)


def test_domain_routed_to_a_smarthost_over_starttls_with_auth_plain(relay, settings, ca, tmp_path, dns_server, caplog):
    caplog.set_level(logging.DEBUG)
    login = tmp_path / "provider-login"
    login.write_text(":".join(LOGIN) + "\n")
    settings.MAILSITE_RELAY_ROUTES = parse_routes(f"example.net=smtp.provider.test:{relay.port} starttls file:{login}")
    sink = relay.start(SMARTHOST, tls_context=context(ca, "smtp.provider.test"), login=LOGIN)

    row = send("bob@example.net")

    assert row.state == State.DELIVERED, row.last_reply
    assert sink.logins == [("PLAIN", *LOGIN)]
    [received] = sink.messages
    assert received.tls
    assert received.rcpt_tos == ["bob@example.net"]
    assert ("example.net", "MX") not in dns_server.queries, "a routed domain's MX hosts are not looked up"
    assert row.last_host == "smtp.provider.test"
    assert not any(LOGIN[1] in record.getMessage() for record in caplog.records), "the password is never logged"


def test_default_route_over_implicit_tls_with_auth_login_from_the_environment(relay, settings, ca, monkeypatch):
    monkeypatch.setenv("MAILSITE_TEST_SMARTHOST_LOGIN", ":".join(LOGIN))
    settings.MAILSITE_RELAY_ROUTES = parse_routes(
        f"*=submission.provider.test:{relay.port} tls env:MAILSITE_TEST_SMARTHOST_LOGIN"
    )
    sink = relay.start(
        SUBMISSION_HOST,
        tls_context=context(ca, "submission.provider.test"),
        implicit_tls=True,
        login=LOGIN,
        mechanisms=("LOGIN",),
    )

    row = send("carol@anywhere.example")

    assert row.state == State.DELIVERED, row.last_reply
    assert sink.logins == [("LOGIN", *LOGIN)]  # a listener that speaks TLS from its first byte took it


def test_refused_login_defers_instead_of_bouncing(relay, settings, ca, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MAILSITE_TEST_SMARTHOST_LOGIN", "relay-user:wrong-secret")
    settings.MAILSITE_RELAY_ROUTES = parse_routes(
        f"example.net=smtp.provider.test:{relay.port} env:MAILSITE_TEST_SMARTHOST_LOGIN"
    )
    sink = relay.start(SMARTHOST, tls_context=context(ca, "smtp.provider.test"), login=LOGIN)

    row = send("bob@example.net")

    assert row.state == State.DEFERRED
    assert row.last_code == 454
    assert "refused our login" in row.last_reply
    assert "535" in row.last_reply
    assert sink.messages == []
    assert not any("wrong-secret" in record.getMessage() for record in caplog.records)
    assert not Attempt.objects.filter(reply__contains="wrong-secret").exists()


def test_smarthost_without_starttls_or_with_an_unreadable_login_defers(relay, settings, tmp_path):
    settings.MAILSITE_RELAY_ROUTES = parse_routes(f"example.net=smtp.provider.test:{relay.port} starttls")
    sink = relay.start(SMARTHOST, starttls=False)
    row = send("bob@example.net")
    assert row.state == State.DEFERRED
    assert "does not offer STARTTLS, which the route to [smtp.provider.test]" in row.last_reply
    assert sink.messages == []

    settings.MAILSITE_RELAY_ROUTES = parse_routes(
        f"example.net=smtp.provider.test:{relay.port} file:{tmp_path / 'missing'}"
    )
    row = send("carol@example.net")
    assert (row.state, row.status) == (State.DEFERRED, "4.3.5")
    assert "is unreadable" in row.last_reply
    assert sink.sessions == 1  # only the first message's


def test_destination_reaching_no_host_is_dead_for_a_while(relay, settings, dns_server, caplog):
    caplog.set_level(logging.INFO, logger="mail.relay")
    settings.MAILSITE_RELAY_DEAD_AFTER = 2
    settings.MAILSITE_RELAY_DEAD_TIME = 60
    settings.MAILSITE_RELAY_ROUTES = {}
    dns_server.add("dead.example", "MX", "10 mx.dead.example.")
    dns_server.add("mx.dead.example", "A", DEAD_MX)  # nothing listens there yet: connections are refused

    first = send("bob@dead.example")
    assert first.state == State.DEFERRED
    assert dead.dead_until("dead.example") is None, "one failed attempt is not enough"
    outbound.retry_now([first.pk])
    tasks.attempt(first.message_id, "dead.example")
    until = dead.dead_until("dead.example")
    assert until is not None
    assert 50 < until - timezone.now().timestamp() <= 60
    assert any("relay destination dead destination=dead.example" in r.getMessage() for r in caplog.records)
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    assert client.ttl(settings.MAILSITE_LIMITS_PREFIX + "relay-dead:dead.example") > 0, "kept in Redis for all"

    # The host is back, but the destination is dead: its mail is deferred without a connection.
    sink = relay.start(DEAD_MX)
    second = send("carol@dead.example")
    assert second.state == State.DEFERRED
    assert "dead.example is not answering: not tried until" in second.last_reply
    assert second.next_attempt >= timezone.now() + datetime.timedelta(seconds=50)
    assert sink.sessions == 0

    dead.reached("dead.example")  # as ETRN for the domain does
    outbound.retry_now([first.pk, second.pk])
    tasks.attempt(second.message_id, "dead.example")
    second.refresh_from_db()
    assert second.state == State.DELIVERED
    assert sink.sessions == 1
