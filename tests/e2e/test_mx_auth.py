"""Sender authentication at the MX end to end: real listener and client, the loopback DNS server's zones."""

from __future__ import annotations

import smtplib

import pytest

from mailauth import dnsquery
from mailboxes.models import Message, Role
from tests.dns_server import DnsServer
from tests.mailauth_support import arc_seal, dkim_sign, publish_key, txt_value
from tests.smtp_support import mail, stored

SPF_OURS = "v=spf1 ip4:127.0.0.0/8 -all"
SPF_ELSEWHERE = "v=spf1 ip4:192.0.2.1 -all"


@pytest.fixture
def zone(settings):
    dns = DnsServer()
    settings.MAILSITE_DNS_NAMESERVERS = [(dns.host, dns.port)]
    settings.MAILSITE_DNS_TIMEOUT = 0.5
    settings.MAILSITE_AUTH_VERIFY = True
    dnsquery.forget_cached_answers()
    yield dns
    dns.close()


@pytest.fixture
def mx(zone, listeners, make_account):
    make_account("alice@example.com")
    return listeners("smtpd")["smtp"].port


def send(port: int, raw: bytes, *, sender: str = "carol@sender.test", helo: str = "mail.sender.test"):
    """(code, reply text) of DATA, or of the first refused command."""
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo(helo)
        client.mail(sender)
        client.rcpt("alice@example.com")
        code, text = client.data(raw)
    return code, text.decode()


def message(**options) -> bytes:
    return mail(sender=options.pop("author", "carol@sender.test"), **options)


def auth_results(raw: bytes) -> str:
    """Our Authentication-Results field, unfolded: right below our Received, as Gmail and Postfix place it."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    fields = head.replace("\r\n\t", " ").split("\r\n")
    assert fields[1].startswith("Received: from "), fields[:3]
    assert fields[2].startswith("Authentication-Results: mx.mailsite.test;"), fields[:3]
    return fields[2]


def only_message() -> bytes:
    [raw] = stored("alice@example.com")
    return raw


@pytest.mark.parametrize(
    ("record", "result"),
    [
        (SPF_OURS, "spf=pass"),
        (SPF_ELSEWHERE, "spf=fail"),
        ("v=spf1 ip4:192.0.2.1 ~all", "spf=softfail"),
        (None, "spf=none"),
        ("v=spf1 include:loop.sender.test -all", "spf=permerror"),
    ],
)
def test_spf_results_are_recorded_and_never_refuse_alone(mx, zone, record, result):
    if record:
        zone.add("sender.test", "TXT", txt_value(record))
        zone.add("loop.sender.test", "TXT", txt_value("v=spf1 include:sender.test -all"))
    code, _ = send(mx, message())
    assert code == 250
    assert f"{result} " in auth_results(only_message())
    assert "smtp.mailfrom=sender.test" in auth_results(only_message())


def test_spf_temperror_is_delivered_and_said(mx, zone):
    zone.servfail.add("sender.test")
    assert send(mx, message())[0] == 250
    assert "spf=temperror" in auth_results(only_message())


def test_spf_fail_refused_when_configured(mx, zone, settings):
    settings.MAILSITE_REJECT_SPF_FAIL = True
    zone.add("sender.test", "TXT", txt_value(SPF_ELSEWHERE))
    assert send(mx, message()) == (550, "5.7.23 SPF validation failed")
    assert stored("alice@example.com") == []


def test_dkim_pass_tampered_and_missing_key(mx, zone):
    publish_key(zone, "sender.test")
    signed = dkim_sign(message(subject="signed"), "sender.test")
    assert send(mx, signed)[0] == 250
    assert send(mx, signed.replace(b"Hi there.", b"Hi there!"))[0] == 250
    assert send(mx, dkim_sign(message(subject="nokey"), "sender.test", selector="gone"))[0] == 250
    good, tampered, missing = (auth_results(raw) for raw in stored("alice@example.com"))
    assert "dkim=pass header.d=sender.test header.s=sel" in good
    assert "dkim=fail (body hash did not verify) header.d=sender.test" in tampered
    assert "dkim=permerror (no key for signature) header.d=sender.test header.s=gone" in missing


def test_dmarc_reject_without_alignment_is_refused(mx, zone):
    zone.add("sender.test", "TXT", txt_value(SPF_ELSEWHERE))
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject"))
    # A valid signature of another domain does not align with From: sender.test.
    publish_key(zone, "other.test")
    code, text = send(mx, dkim_sign(message(), "other.test"))
    assert (code, text) == (
        550,
        "5.7.1 Message refused: the DMARC policy of sender.test asks to reject unauthenticated mail",
    )
    assert stored("alice@example.com") == []


def test_dmarc_reject_with_aligned_dkim_passes(mx, zone):
    zone.add("sender.test", "TXT", txt_value(SPF_ELSEWHERE))
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject"))
    # Relaxed alignment (RFC 7489 3.1.1): a signature of a subdomain aligns with the organisational domain.
    publish_key(zone, "mail.sender.test")
    assert send(mx, dkim_sign(message(), "mail.sender.test"))[0] == 250
    results = auth_results(only_message())
    assert "dmarc=pass (p=reject dis=none) header.from=sender.test" in results


def test_dmarc_strict_alignment_refuses_the_subdomain_signature(mx, zone):
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject; adkim=s"))
    publish_key(zone, "mail.sender.test")
    assert send(mx, dkim_sign(message(), "mail.sender.test"))[0] == 550


def test_dmarc_subdomain_policy_and_pct(mx, zone):
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=none; sp=reject"))
    assert send(mx, message(author="carol@news.sender.test"), sender="carol@news.sender.test")[0] == 550
    zone.add("_dmarc.pct.test", "TXT", txt_value("v=DMARC1; p=reject; pct=0"))
    # Outside the sampled 0%, the next weaker policy applies (RFC 7489 6.6.4): quarantine, not reject.
    assert send(mx, message(author="carol@pct.test"), sender="carol@pct.test")[0] == 250
    assert "dmarc=fail (p=reject dis=quarantine" in auth_results(only_message())


def test_dmarc_none_failure_is_delivered(mx, zone):
    zone.add("sender.test", "TXT", txt_value(SPF_ELSEWHERE))
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=none"))
    assert send(mx, message())[0] == 250
    assert "dmarc=fail (p=none dis=none" in auth_results(only_message())


def test_dmarc_none_with_aligned_dkim_passes(mx, zone):
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=none"))
    publish_key(zone, "sender.test")
    assert send(mx, dkim_sign(message(), "sender.test"))[0] == 250
    assert "dmarc=pass (p=none dis=none) header.from=sender.test" in auth_results(only_message())


def test_dmarc_pass_by_aligned_spf(mx, zone):
    zone.add("sender.test", "TXT", txt_value(SPF_OURS))
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject"))
    assert send(mx, message())[0] == 250
    assert "dmarc=pass" in auth_results(only_message())


def test_dmarc_reject_with_temporary_spf_failure_asks_to_retry(mx, zone):
    zone.servfail.add("sender.test")
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject"))
    code, text = send(mx, message())
    assert code == 451
    assert text.startswith("4.7.0 ")
    assert stored("alice@example.com") == []


def test_arc_chain_pass(mx, zone):
    publish_key(zone, "sender.test")
    publish_key(zone, "list.test")
    forwarded = arc_seal(dkim_sign(message(), "sender.test"), "list.test")
    assert send(mx, forwarded, sender="list-bounces@list.test")[0] == 250
    assert "arc=pass" in auth_results(only_message())


def test_forged_local_sender_is_refused(mx, zone):
    for sender, author in (("ceo@example.com", "carol@sender.test"), ("carol@sender.test", "ceo@example.com")):
        code, text = send(mx, message(author=author), sender=sender)
        assert (code, text) == (
            550,
            "5.7.1 Unauthenticated mail claiming to come from our domain example.com is refused",
        )
    assert stored("alice@example.com") == []


def test_local_sender_vouched_for_by_spf_or_dkim_is_accepted(mx, zone):
    zone.add("example.com", "TXT", txt_value(SPF_OURS))
    assert send(mx, message(author="ceo@example.com"), sender="ceo@example.com")[0] == 250
    zone.clear()
    dnsquery.forget_cached_answers()
    publish_key(zone, "example.com")
    signed = dkim_sign(message(author="ceo@example.com", subject="signed"), "example.com")
    assert send(mx, signed, sender="bounces@sender.test")[0] == 250
    assert len(stored("alice@example.com")) == 2


FORGED = b"Authentication-Results: mx.mailsite.test; dmarc=pass header.from=bank.test\r\n"
FORGED += b"Authentication-Results: upstream.test; spf=pass smtp.mailfrom=sender.test\r\n"


def test_forged_authentication_results_are_removed(mx, zone):
    forged = (
        b"Authentication-Results: mx.mailsite.test; dkim=pass header.d=example.com\r\n"
        b"Authentication-Results: upstream.test; spf=pass smtp.mailfrom=sender.test\r\n"
        b"Authentication-Results:\r\n (folded) MX.mailsite.test 1;\r\n\tdmarc=pass\r\n"
    )
    original = forged + message()
    assert send(mx, original)[0] == 250
    raw = only_message()
    assert raw.count(b"mx.mailsite.test;") == 1
    assert b"MX.mailsite.test" not in raw
    # Everything else is kept byte for byte: the received message minus the forged fields, after our trace.
    kept = b"Authentication-Results: upstream.test; spf=pass smtp.mailfrom=sender.test\r\n" + message()
    assert raw.endswith(b"\r\n" + kept)
    head = raw[: -len(kept)]
    assert head.startswith(b"Return-Path: <carol@sender.test>\r\nReceived: from mail.sender.test")
    assert b"\r\nAuthentication-Results: mx.mailsite.test;\r\n\tspf=" in head


def test_trusted_networks_skip_verification(mx, zone, settings):
    import ipaddress

    settings.MAILSITE_TRUSTED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    # Unverified, but still no field may speak for our MX but our MX (the webmail shows what it says).
    assert send(mx, FORGED + message(author="ceo@example.com"), sender="ceo@example.com")[0] == 250
    assert b"Authentication-Results: mx.mailsite.test" not in only_message()
    assert b"Authentication-Results: upstream.test;" in only_message()


def test_forged_fields_are_removed_with_verification_off(mx, zone, settings):
    settings.MAILSITE_AUTH_VERIFY = False
    assert send(mx, FORGED + message())[0] == 250
    assert b"Authentication-Results: mx.mailsite.test" not in only_message()


def test_submission_is_not_verified(zone, listeners, make_account):
    make_account("ceo@example.com")
    make_account("alice@example.com")
    port = listeners("smtpd")["submission"].port
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls()
        client.login("ceo@example.com", "correct horse battery staple")
        client.sendmail("ceo@example.com", ["alice@example.com"], FORGED + message(author="ceo@example.com"))
    [raw] = [m for m in stored("alice@example.com")]
    assert b"Authentication-Results: mx.mailsite.test" not in raw
    assert not zone.queries


def test_local_domain_in_a_display_name_is_refused(mx, zone):
    code, _ = send(mx, message(author='"ceo@example.com" <carol@sender.test>'))
    assert code == 550


def test_dmarc_quarantine_files_into_junk(mx, zone):
    zone.add("sender.test", "TXT", txt_value(SPF_ELSEWHERE))
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=quarantine"))
    assert send(mx, message())[0] == 250
    [copy] = Message.objects.filter(account__address="alice@example.com").select_related("mailbox")
    assert copy.mailbox.role == Role.JUNK
    assert "dmarc=fail (p=quarantine dis=quarantine" in auth_results(only_message())


def test_dkim_fail_refused_when_configured(mx, zone, settings):
    settings.MAILSITE_REJECT_DKIM_FAIL = True
    publish_key(zone, "sender.test")
    tampered = dkim_sign(message(), "sender.test").replace(b"Hi there.", b"Hi there!")
    assert send(mx, tampered) == (550, "5.7.20 No passing DKIM signature found")
    assert send(mx, dkim_sign(message(subject="intact"), "sender.test"))[0] == 250
