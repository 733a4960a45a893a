"""Verification on its own (mailauth.verify) against the loopback DNS server: results and their bounds."""

from __future__ import annotations

import asyncio

import pytest

from mailauth import dnsquery
from mailauth.arc_check import ArcResult
from mailauth.verify import Envelope, verify_message, verify_off_loop
from tests.dns_server import DnsServer
from tests.mailauth_support import arc_seal, dkim_sign, publish_key, txt_value
from tests.unit.test_mailauth_dkim import RFC8463, RFC8463_KEYS

MESSAGE = (
    b"From: carol@sender.test\r\nTo: alice@example.com\r\nSubject: Hi\r\nMessage-ID: <1@sender.test>\r\n\r\nHi.\r\n"
)


@pytest.fixture
def zone(settings):
    dns = DnsServer()
    settings.MAILSITE_DNS_NAMESERVERS = [(dns.host, dns.port)]
    settings.MAILSITE_DNS_TIMEOUT = 0.5
    dnsquery.forget_cached_answers()
    yield dns
    dns.close()


def check(raw: bytes = MESSAGE, *, sender: str = "carol@sender.test", helo: str = "mail.sender.test", total=5.0):
    envelope = Envelope(ip="127.0.0.1", helo=helo, sender=sender, author_domains=("sender.test",))
    return verify_message(raw, envelope, total_time=total, max_signatures=10)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 ip4:127.0.0.0/8 -all", "pass"),
        ("v=spf1 ip4:192.0.2.1 -all", "fail"),
        ("v=spf1 ip4:192.0.2.1 ~all", "softfail"),
        ("v=spf1 ?all", "neutral"),
        ("v=spf1 ip4:127.0.0.1 moo:x -all", "permerror"),
    ],
)
def test_spf_results(zone, record, expected):
    zone.add("sender.test", "TXT", txt_value(record))
    assert check().spf.result == expected
    assert check().spf.domain == "sender.test"


def test_spf_none_without_a_record(zone):
    zone.add("sender.test", "MX", "10 mx.sender.test.")
    assert check().spf.result == "none"


def test_spf_servfail_and_timeout_are_temperror(zone):
    zone.servfail.add("sender.test")
    assert check().spf.result == "temperror"
    zone.servfail.clear()
    zone.silent.add("sender.test")
    dnsquery.forget_cached_answers()
    assert check().spf.result == "temperror"


def test_spf_more_than_ten_lookups_is_permerror(zone):
    # RFC 7208 4.6.4: the 11th mechanism that queries DNS ends the evaluation.
    includes = " ".join(f"include:n{i}.sender.test" for i in range(11))
    zone.add("sender.test", "TXT", txt_value(f"v=spf1 {includes} -all"))
    for i in range(11):
        zone.add(f"n{i}.sender.test", "TXT", txt_value("v=spf1 ip4:192.0.2.1 -all"))
    result = check().spf
    assert result.result == "permerror"
    assert "lookups" in result.reason.lower()


def test_spf_include_loop_is_permerror(zone):
    zone.add("sender.test", "TXT", txt_value("v=spf1 include:loop.sender.test -all"))
    zone.add("loop.sender.test", "TXT", txt_value("v=spf1 include:sender.test -all"))
    assert check().spf.result == "permerror"


def test_spf_void_lookups_over_two_is_permerror(zone):
    zone.add("sender.test", "TXT", txt_value("v=spf1 a:v1.sender.test a:v2.sender.test a:v3.sender.test -all"))
    assert check().spf.result == "permerror"


def test_spf_answer_of_ten_thousand_strings_is_permerror(zone, settings):
    # The answer comes over TCP and takes the loopback server a while to send: the bound under test is its size.
    settings.MAILSITE_DNS_TIMEOUT = 5.0
    zone.add("sender.test", "TXT", " ".join(['"v=spf1"'] + ['"a"'] * 10_000))
    assert check().spf.result == "permerror"


def test_helo_identity_and_null_sender(zone):
    zone.add("mail.sender.test", "TXT", txt_value("v=spf1 ip4:127.0.0.1 -all"))
    verdict = check(sender="")
    assert (verdict.spf_helo.result, verdict.spf_helo.domain) == ("pass", "mail.sender.test")
    # RFC 7208 2.4: for the null reverse-path the MAIL FROM check uses postmaster@<HELO>.
    assert (verdict.spf.result, verdict.spf.domain) == ("pass", "mail.sender.test")
    assert check(helo="[127.0.0.1]").spf_helo.result == "none"


def test_dkim_pass_fail_and_missing_key(zone):
    publish_key(zone, "sender.test")
    signed = dkim_sign(MESSAGE, "sender.test")
    [good] = check(signed).dkim
    assert (good.result, good.domain, good.selector) == ("pass", "sender.test", "sel")
    [tampered] = check(signed.replace(b"Hi.\r\n", b"Hi!\r\n")).dkim
    assert tampered.result == "fail"
    assert "body hash" in tampered.reason
    [missing] = check(dkim_sign(MESSAGE, "sender.test", selector="gone")).dkim
    assert (missing.result, missing.reason) == ("permerror", "no key for signature")


def test_dkim_every_signature_has_its_result(zone):
    publish_key(zone, "sender.test")
    signed = dkim_sign(dkim_sign(MESSAGE, "other.test"), "sender.test")
    assert [(d.domain, d.result) for d in check(signed).dkim] == [("sender.test", "pass"), ("other.test", "permerror")]


def test_malformed_dkim_signatures_are_permerror(zone):
    for field in (b"DKIM-Signature: v=1; a=rsa-sha256; d=sender.test; garbage", b"DKIM-Signature: ;;;=\x01"):
        [result] = check(field + b"\r\n" + MESSAGE).dkim
        assert result.result == "permerror"


def test_hundred_signatures_verify_only_the_limit(zone):
    publish_key(zone, "sender.test")
    signed = MESSAGE
    for _ in range(100):
        signed = dkim_sign(signed, "sender.test")
    found = check(signed).dkim
    assert len(found) == 100
    assert [d.result for d in found[:10]] == ["pass"] * 10
    assert {d.result for d in found[10:]} == {"policy"}


def test_dkim_key_servfail_is_temperror(zone):
    zone.servfail.add("sel._domainkey.sender.test")
    [result] = check(dkim_sign(MESSAGE, "sender.test")).dkim
    assert result.result == "temperror"


def test_total_time_bounds_verification(zone):
    zone.silent.update({"sender.test", "mail.sender.test", "_dmarc.sender.test"})
    verdict = check(total=0.3)
    assert verdict.spf.result == "temperror"
    assert [d.result for d in verdict.dmarc] == ["temperror"]


def test_dkim_key_of_ten_thousand_strings_is_permerror(zone, settings):
    settings.MAILSITE_DNS_TIMEOUT = 5.0  # as for the SPF answer of ten thousand strings
    zone.add("sel._domainkey.sender.test", "TXT", " ".join(['"v=DKIM1; k=rsa; p="'] + ['"A"'] * 10_000))
    [result] = check(dkim_sign(MESSAGE, "sender.test")).dkim
    assert result.result == "permerror"


def test_internationalised_sender_domain_is_checked_as_a_labels(zone):
    zone.add("xn--mnchen-3ya.test", "TXT", txt_value("v=spf1 ip4:127.0.0.0/8 -all"))
    assert check(sender="grüße@münchen.test").spf.result == "pass"
    assert check(sender="carol@bad_domain..test").spf.result in ("none", "permerror")


def test_ed25519_and_rsa_signatures_with_keys_from_dns(zone):
    # RFC 8463 Appendix A: one message signed with Ed25519 and with RSA; both keys published in the test zone.
    for name, record in RFC8463_KEYS.items():
        zone.add(name, "TXT", txt_value(record.decode()))
    envelope = Envelope(ip="127.0.0.1", helo="mail.sender.test", sender="", author_domains=("football.example.com",))
    verdict = verify_message(RFC8463, envelope, total_time=5.0, max_signatures=10)
    assert [(d.domain, d.selector, d.result) for d in verdict.dkim] == [
        ("football.example.com", "brisbane", "pass"),
        ("football.example.com", "test", "pass"),
    ]


def test_arc_chain_is_validated_only_where_dmarc_did_not_pass(zone):
    publish_key(zone, "sender.test")
    publish_key(zone, "list.test")
    forwarded = arc_seal(dkim_sign(MESSAGE, "sender.test"), "list.test")
    assert check(forwarded).arc == ArcResult("pass")  # no DMARC record: the chain is what vouches
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject"))
    dnsquery.forget_cached_answers()
    passed = check(forwarded)
    assert [d.result for d in passed.dmarc] == ["pass"]
    assert passed.arc is None
    assert not any(item.startswith("arc=") for item in passed.resinfos())
    assert "arc=none" in check(dkim_sign(MESSAGE, "sender.test")).resinfos()  # no ARC set at all


def test_cached_only_lookups_never_ask_the_network_and_record_misses(zone):
    zone.add("sender.test", "TXT", txt_value("v=spf1 -all"))
    with dnsquery.cached_only() as misses, pytest.raises(dnsquery.NotCached):
        dnsquery.txt("sender.test")
    assert (misses, zone.queries) == (["TXT sender.test"], [])
    assert dnsquery.txt("sender.test") == [b"v=spf1 -all"]  # asks the server, and caches the answer
    with dnsquery.cached_only() as misses:
        assert dnsquery.txt("sender.test") == [b"v=spf1 -all"]
    assert (misses, len(zone.queries)) == ([], 1)


def test_verification_on_the_loop_redoes_a_cache_miss_with_dns(zone):
    publish_key(zone, "sender.test")
    zone.add("sender.test", "TXT", txt_value("v=spf1 ip4:127.0.0.0/8 -all"))
    zone.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject"))
    envelope = Envelope(
        ip="127.0.0.1", helo="mail.sender.test", sender="carol@sender.test", author_domains=("sender.test",)
    )
    unsigned = asyncio.run(verify_off_loop(MESSAGE, envelope))  # SPF and DMARC answers are cached from here on
    assert [d.result for d in unsigned.dkim] == []
    # The key is not cached: the attempt from the cache alone is dropped and the message verified with DNS.
    signed = asyncio.run(verify_off_loop(dkim_sign(MESSAGE, "sender.test"), envelope))
    assert [d.result for d in signed.dkim] == ["pass"]
    assert ("sel._domainkey.sender.test", "TXT") in zone.queries
    asked = len(zone.queries)
    again = asyncio.run(verify_off_loop(dkim_sign(MESSAGE, "sender.test"), envelope))
    assert len(zone.queries) == asked  # everything from the cache now
    assert [line.split(" header.b=")[0] for line in again.resinfos()] == [
        line.split(" header.b=")[0] for line in signed.resinfos()
    ]
