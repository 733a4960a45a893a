"""Outbound MTA-STS (RFC 8461) end to end: the loopback DNS server publishes `_mta-sts` records, an HTTPS policy
server on loopback serves the policy under a test CA the worker trusts (MAILSITE_RELAY_CA_FILE), and aiosmtpd
sinks present a certificate from that CA or the site's self-signed one. A real Celery worker delivers."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme

from mailboxes.actions import queueing
from mailboxes.models import Message
from mailcore.dsn import Requests
from relay.models import MtaStsPolicy, OutboundRecipient, State
from tests.relay_support import RELAY_QUEUE, CeleryWorker, PolicyServer, Sinks, address, wait_for, worker_env

pytestmark = [pytest.mark.xdist_group("relay-mta-sts"), pytest.mark.slow]

MX, POLICY_HOST, OTHER_MX = address(7), address(8), address(9)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


@pytest.fixture(scope="module")
def policy_server(ca) -> Iterator[PolicyServer]:
    server = PolicyServer(POLICY_HOST, server_context(ca, "mta-sts.example.net"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def worker(
    django_db_setup, django_db_blocker, dns_server, sinks, policy_server, ca, tmp_path_factory
) -> Iterator[CeleryWorker]:
    workdir = tmp_path_factory.mktemp("relay-mta-sts")
    ca_file = workdir / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    env = {
        **worker_env(dns_server, sinks),
        "MAILSITE_RELAY_TIMEOUT": "10",  # no test here waits for a timeout; a loaded machine must not meet one
        "MAILSITE_RELAY_CLAIM_TIMEOUT": "5s",
        "MAILSITE_RELAY_SWEEP_GRACE": "2s",
        "MAILSITE_RELAY_CA_FILE": str(ca_file),
        "MAILSITE_RELAY_HTTPS_PORT": str(policy_server.port),
    }
    with django_db_blocker.unblock():
        process = CeleryWorker(workdir, env, concurrency=1)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def relay(transactional_db, settings, worker, dns_server, sinks, policy_server, make_account) -> Iterator[Sinks]:
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    worker.revive()  # a test that deferred a domain (a bad certificate) may have left it dead for a second
    dns_server.clear()
    dns_server.add("example.net", "MX", "10 mx.example.net.")
    dns_server.add("mx.example.net", "A", MX)
    dns_server.add("mta-sts.example.net", "A", POLICY_HOST)
    dns_server.add("_mta-sts.example.net", "TXT", '"v=STSv1; id=20261203a;"')
    policy_server.requests.clear()
    make_account("alice@example.com")
    yield sinks
    sinks.quiet()
    sinks.stop_all()


def send(subject: str = "Hello") -> OutboundRecipient:
    raw = f"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: {subject}\r\n\r\nHi\r\n".encode()
    queued = queueing.enqueue(raw, "alice@example.com", ["bob@example.net"], author_domain="example.com")
    assert queued is not None
    return queued.recipients.get()


def tried(row: OutboundRecipient) -> OutboundRecipient:
    wait_for(lambda: OutboundRecipient.objects.get(pk=row.pk).attempts > 0)
    return OutboundRecipient.objects.get(pk=row.pk)


def test_enforce_delivers_to_a_policy_mx_with_a_valid_certificate(relay, ca, policy_server):
    sink = relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    policy_server.serve("enforce", "mx.example.net")

    row = tried(send())
    assert row.state == State.DELIVERED, row.last_reply
    assert [message.tls for message in sink.messages] == [True]
    assert policy_server.requests == [("mta-sts.example.net", "/.well-known/mta-sts.txt")]
    cached = MtaStsPolicy.objects.get(domain="example.net")
    assert (cached.policy_id, cached.mode, cached.mx) == ("20261203a", "enforce", ["mx.example.net"])
    assert cached.max_age == 86400

    # The same id: the cached policy is used, not fetched again.
    assert (row := tried(send("again"))).state == State.DELIVERED, row.last_reply
    assert len(policy_server.requests) == 1


def test_enforce_defers_when_the_certificate_is_not_valid(relay, policy_server):
    sink = relay.start(MX)  # the site's self-signed certificate: not from a CA the relay trusts
    policy_server.serve("enforce", "mx.example.net")

    row = tried(send())
    assert row.state == State.DEFERRED
    assert "MTA-STS requires a valid certificate" in row.last_reply
    assert "certificate verify failed" in row.last_reply
    assert sink.messages == []


def test_enforce_defers_when_the_sink_offers_no_starttls(relay, ca, policy_server):
    sink = relay.start(MX, starttls=False)
    policy_server.serve("enforce", "mx.example.net")

    row = tried(send())
    assert row.state == State.DEFERRED
    assert "does not offer STARTTLS" in row.last_reply
    assert sink.messages == []


def test_enforce_sends_nothing_to_an_mx_outside_the_policy(relay, ca, policy_server):
    sink = relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    policy_server.serve("enforce", "mail.example.net", "*.mx.example.org")

    row = tried(send())
    assert (row.state, row.status) == (State.DEFERRED, "4.7.5")
    assert "matches its MTA-STS policy" in row.last_reply
    assert sink.sessions == 0


def test_a_wildcard_pattern_matches_one_label(relay, ca, policy_server):
    sink = relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    policy_server.serve("enforce", "*.example.net")

    assert (row := tried(send())).state == State.DELIVERED, row.last_reply
    assert len(sink.messages) == 1


def test_testing_mode_only_reports(relay, worker, policy_server):
    sink = relay.start(MX)  # neither a policy MX nor a valid certificate
    policy_server.serve("testing", "mail.example.net")

    assert (row := tried(send())).state == State.DELIVERED, row.last_reply
    assert len(sink.messages) == 1
    assert "relay mta-sts mismatch domain=example.net host=mx.example.net mode=testing action=reported" in worker.log()
    [line] = [line for line in worker.log().splitlines() if "relay mta-sts tls domain=example.net" in line]
    assert "host=mx.example.net mode=testing action=reported problem=" in line
    assert "certificate verify failed" in line


def test_a_cached_policy_stays_in_force_while_its_host_and_record_are_gone(relay, ca, dns_server, policy_server):
    relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    policy_server.serve("enforce", "mx.example.net")
    assert (row := tried(send())).state == State.DELIVERED, row.last_reply

    # An attacker removes the TXT record and blocks the policy host, and the MX shows a forged certificate.
    dns_server.records.pop(("_mta-sts.example.net", "TXT"))
    policy_server.status = 404
    relay.stop(MX)
    forged = relay.start(MX)
    row = tried(send("second"))
    assert row.state == State.DEFERRED
    assert "certificate verify failed" in row.last_reply
    assert forged.messages == []


def test_a_new_policy_id_fetches_the_new_policy(relay, dns_server, policy_server):
    sink = relay.start(MX)
    policy_server.serve("enforce", "mx.example.net")
    assert (row := tried(send())).state == State.DEFERRED, row.last_reply

    dns_server.records[("_mta-sts.example.net", "TXT")] = ['"v=STSv1; id=20261203b;"']
    policy_server.serve("none")
    wait_for(lambda: OutboundRecipient.objects.filter(state=State.DELIVERED).exists())
    assert len(sink.messages) == 1
    assert MtaStsPolicy.objects.get(domain="example.net").mode == "none"


@pytest.mark.parametrize(
    ("status", "content_type"),
    [(301, "text/plain"), (404, "text/plain"), (200, "text/html")],
    ids=["redirect", "not-found", "not-text-plain"],
)
def test_a_policy_served_wrongly_is_no_policy(relay, worker, policy_server, status, content_type):
    sink = relay.start(MX)
    policy_server.serve("enforce", "mail.example.net")
    policy_server.status, policy_server.content_type = status, content_type
    failed = "relay mta-sts fetch failed domain=example.net"
    before = worker.log_path.read_text().count(failed)

    assert (row := tried(send())).state == State.DELIVERED, row.last_reply
    assert len(sink.messages) == 1
    assert not MtaStsPolicy.objects.exists()
    assert worker.log_path.read_text().count(failed) == before + 1


def test_no_record_means_no_policy(relay, dns_server, policy_server):
    dns_server.records.pop(("_mta-sts.example.net", "TXT"))
    sink = relay.start(MX)
    policy_server.serve("enforce", "mail.example.net")

    assert (row := tried(send())).state == State.DELIVERED, row.last_reply
    assert len(sink.messages) == 1
    assert policy_server.requests == []


def test_the_admin_lists_cached_policies_and_forgets_one(relay, ca, policy_server, client, make_account):
    relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    policy_server.serve("enforce", "mx.example.net", "*.example.net")
    assert (row := tried(send())).state == State.DELIVERED, row.last_reply
    client.force_login(make_account("admin@example.com", is_staff=True, is_superuser=True))

    page = client.get("/admin/relay/mtastspolicy/").content.decode()
    assert "example.net" in page
    assert "mx.example.net, *.example.net" in page
    assert ">enforce<" in page
    policy = MtaStsPolicy.objects.get()
    detail = client.get(f"/admin/relay/mtastspolicy/{policy.pk}/change/").content.decode()
    assert "20261203a" in detail
    assert 'name="_save"' not in detail  # what was fetched is not edited by hand

    response = client.post("/admin/relay/mtastspolicy/", {"action": "forget", "_selected_action": [policy.pk]})
    assert response.status_code == 302
    assert not MtaStsPolicy.objects.exists()
    assert (row := tried(send("again"))).state == State.DELIVERED, row.last_reply
    assert len(policy_server.requests) == 2, "forgotten, so fetched again under the same id"


# --- REQUIRETLS (RFC 8689) ---------------------------------------------------------------------------------------


def send_requiring_tls(subject: str = "Sealed", header: bytes = b"") -> OutboundRecipient:
    raw = f"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: {subject}\r\n".encode() + header + b"\r\nHi\r\n"
    queued = queueing.enqueue(
        raw, "alice@example.com", ["bob@example.net"], author_domain=None, requests=Requests(require_tls=True)
    )
    assert queued is not None
    return queued.recipients.get()


def test_requiretls_goes_to_a_verified_mx_that_offers_it_and_is_passed_on(relay, ca, policy_server):
    sink = relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    sink.extensions = ("REQUIRETLS",)
    policy_server.serve("enforce", "mx.example.net")

    row = tried(send_requiring_tls())
    assert row.state == State.DELIVERED, row.last_reply
    assert [message.tls for message in sink.messages] == [True]
    assert sink.parameters == [["REQUIRETLS"]]


def test_requiretls_tries_the_next_mx_for_one_that_offers_it(relay, ca, policy_server, dns_server):
    # RFC 8689 4.2.1: the first MX does not offer REQUIRETLS; the message goes to the next one, which does.
    dns_server.add("example.net", "MX", "20 mx2.example.net.")
    dns_server.add("mx2.example.net", "A", OTHER_MX)
    first = relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    second = relay.start(OTHER_MX, tls_context=server_context(ca, "mx2.example.net"))
    second.extensions = ("REQUIRETLS",)
    policy_server.serve("enforce", "mx.example.net", "mx2.example.net")

    row = tried(send_requiring_tls())
    assert row.state == State.DELIVERED, row.last_reply
    assert (first.messages, len(second.messages)) == ([], 1)
    assert second.parameters == [["REQUIRETLS"]]


@pytest.mark.parametrize("mode", ["enforce", "testing", "none"])
def test_requiretls_bounces_without_a_verified_mx_offering_it(relay, ca, policy_server, mode):
    # enforce: the MX is verified but does not offer REQUIRETLS; testing and none: nothing verifies the MX.
    sink = relay.start(MX, tls_context=server_context(ca, "mx.example.net"))
    policy_server.serve(mode, "mx.example.net")

    row = tried(send_requiring_tls())
    assert (row.state, row.status) == (State.BOUNCED, "5.7.30")  # RFC 8689 5
    assert sink.messages == []
    wait_for(lambda: Message.objects.filter(account__address="alice@example.com").exists())
    [notice] = Message.objects.filter(account__address="alice@example.com")
    raw = bytes(notice.body.raw)
    assert b"Status: 5.7.30" in raw
    assert b"text/rfc822-headers" in raw
    assert b"\r\n\r\nHi\r\n" not in raw


def test_tls_required_no_is_delivered_despite_an_enforce_policy(relay, policy_server):
    sink = relay.start(MX)  # a certificate the enforce policy would refuse
    policy_server.serve("enforce", "mx.example.net")
    raw = b"From: alice@example.com\r\nTo: bob@example.net\r\nTLS-Required: No\r\nSubject: Open\r\n\r\nHi\r\n"
    queued = queueing.enqueue(raw, "alice@example.com", ["bob@example.net"], author_domain=None)
    assert queued is not None
    assert queued.tls_optional
    assert (row := tried(queued.recipients.get())).state == State.DELIVERED, row.last_reply
    assert len(sink.messages) == 1

    # Under REQUIRETLS the field is ignored: the message waits for a valid certificate instead.
    row = tried(send_requiring_tls("Both", b"TLS-Required: No\r\n"))
    assert row.state == State.DEFERRED
    assert "certificate verify failed" in row.last_reply
    assert len(sink.messages) == 1
