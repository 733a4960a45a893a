"""DNS blocklists at the MX (RFC 5782), against the loopback DNS server."""

from __future__ import annotations

import ipaddress
import smtplib

import pytest

from mailauth import dnsbl, dnsquery
from tests.dns_server import DnsServer
from tests.smtp_support import RawSession, mail, stored


@pytest.fixture
def blocklist(settings):
    dns = DnsServer()
    settings.MAILSITE_DNS_NAMESERVERS = [(dns.host, dns.port)]
    settings.MAILSITE_DNS_TIMEOUT = 0.5
    settings.MAILSITE_DNSBL_ZONES = ["down.test", "bl.test"]
    dns.servfail.add("1.0.0.127.down.test")  # a list that cannot be asked lists no one
    dnsquery.forget_cached_answers()
    yield dns
    dns.close()


@pytest.fixture
def mx(blocklist, listeners, make_account):
    make_account("alice@example.com")
    return listeners("smtpd")["smtp"].port


def test_query_names():
    assert dnsbl.query_name("192.0.2.99", "bl.test") == "99.2.0.192.bl.test"
    assert dnsbl.query_name("2001:db8::1", "bl.test.") == "1.0.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.bl.test"
    assert dnsbl.query_name("not an address", "bl.test") is None


def test_listed_client_is_refused_at_connection(mx, blocklist):
    blocklist.add("1.0.0.127.bl.test", "A", "127.0.0.2")
    refusal = "5.7.1 Service unavailable; client [127.0.0.1] is listed by bl.test"
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", mx)
    assert (refused.value.smtp_code, refused.value.smtp_error.decode()) == (554, refusal)
    # RFC 5321 3.1: after the 554 greeting, 503 to everything but QUIT; the connection stays open until QUIT.
    session = RawSession(mx)
    assert session.greeting == "554 " + refusal
    for command in ("EHLO mail.sender.test", "MAIL FROM:<carol@sender.test>", "RCPT TO:<alice@example.com>", "NOOP"):
        assert session.command(command).startswith("503 5.5.1 Bad sequence of commands")
    assert session.command("QUIT").startswith("221 ")
    assert session.closed()
    session.close()
    assert stored("alice@example.com") == []


def test_refused_client_is_cut_off_at_the_error_limit(mx, blocklist, settings):
    blocklist.add("1.0.0.127.bl.test", "A", "127.0.0.2")
    session = RawSession(mx)
    assert session.greeting.startswith("554 5.7.1 ")
    for _ in range(settings.MAILSITE_SMTP_MAX_ERRORS):
        assert session.command("HELO mail.sender.test").startswith("503 5.5.1 ")
    assert session.reply() == "421 4.7.0 Too many errors, closing connection"
    assert session.closed()
    session.close()


def test_error_answers_and_unlisted_clients_pass(mx, blocklist, settings):
    blocklist.add("1.0.0.127.bl.test", "A", "127.255.255.254")  # Spamhaus's "query refused" answer
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.sendmail("carol@sender.test", ["alice@example.com"], mail())
    settings.MAILSITE_TRUSTED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    blocklist.clear()
    blocklist.add("1.0.0.127.bl.test", "A", "127.0.0.2")
    dnsquery.forget_cached_answers()
    with smtplib.SMTP("127.0.0.1", mx) as client:  # trusted networks are not looked up
        client.sendmail("carol@sender.test", ["alice@example.com"], mail("trusted"))
    assert len(stored("alice@example.com")) == 2
