"""What the webmail tells its user about senders, in a real browser: mail received by the real MX (verification
on, against the loopback DNS server's zones) shows who it is verified as coming from, failures carry a warning,
and the allow and block lists edited in the settings decide where the MX files the next message."""

from __future__ import annotations

import os
import smtplib

import pytest
from playwright.sync_api import expect

from mailauth import dnsquery
from mailauth.models import SenderRule
from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.dns_server import DnsServer
from tests.mailauth_support import dkim_sign, publish_key, txt_value
from tests.smtp_support import mail
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    deliver,
    sized_page_fixture,
)
from tests.webmail_support import sign_in as sign_in_at

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def mx(settings, listeners, alice):
    dns = DnsServer()
    settings.MAILSITE_DNS_NAMESERVERS = [(dns.host, dns.port)]
    settings.MAILSITE_DNS_TIMEOUT = 0.5
    settings.MAILSITE_AUTH_VERIFY = True
    dnsquery.forget_cached_answers()
    # sender.test signs its mail and publishes p=reject; bank.test publishes p=none and sends from elsewhere.
    publish_key(dns, "sender.test")
    dns.add("sender.test", "TXT", txt_value("v=spf1 ip4:127.0.0.0/8 -all"))
    dns.add("_dmarc.sender.test", "TXT", txt_value("v=DMARC1; p=reject"))
    dns.add("bank.test", "TXT", txt_value("v=spf1 ip4:192.0.2.1 -all"))
    dns.add("_dmarc.bank.test", "TXT", txt_value("v=DMARC1; p=none"))
    yield listeners("smtpd")["smtp"].port
    dns.close()


def send(port: int, raw: bytes, sender: str) -> int:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("mail.sender.test")
        client.mail(sender)
        client.rcpt("alice@example.com")
        return client.data(raw)[0]


def stored(subject: str) -> Message:
    return Message.objects.get(account__address="alice@example.com", subject=subject)


def sign_in(page, web_server) -> None:
    sign_in_at(page, web_server.url, "alice@example.com", PASSWORD)


def test_verified_sender_and_failed_sender_are_told_apart(web_server, sized_page, mx, alice) -> None:
    page = sized_page
    signed = dkim_sign(mail("Lunch on Friday", sender="carol@sender.test"), "sender.test")
    assert send(mx, signed, "carol@sender.test") == 250
    # Fields of another host claiming a pass, and a forged one of ours: neither may make the message look verified.
    forged = (
        "Authentication-Results: mx.bank.test; dkim=pass header.d=bank.test; dmarc=pass header.from=bank.test\r\n"
        "Authentication-Results: mx.mailsite.test; dmarc=pass header.from=bank.test\r\n"
    )
    assert (
        send(mx, mail("Your account is locked", sender="security@bank.test", extra=forged), "security@bank.test") == 250
    )
    shown_locally = deliver(alice, subject="Written here")

    sign_in(page, web_server)
    page.goto(f"{web_server.url}/m/{stored('Lunch on Friday').pk}/")
    check = page.locator("#reader .sender-check")
    expect(check).to_have_attribute("data-state", "verified")
    expect(check).to_have_attribute("role", "status")
    expect(check.locator(".verdict")).to_have_text("Verified: this message comes from sender.test.")
    check.locator("summary").click()
    expect(check.locator("li")).to_have_text(
        [
            "DKIM: valid signature by sender.test.",
            "SPF: sender.test allows the server that sent it.",
            "DMARC: the message passes the policy of sender.test.",
        ]
    )
    assert_full_page(page)

    page.goto(f"{web_server.url}/m/{stored('Your account is locked').pk}/")
    warning = page.locator("#reader .sender-check")
    expect(warning).to_have_attribute("data-state", "failed")
    expect(warning).to_have_attribute("role", "alert")
    expect(warning).to_have_class("notice sender-check error")
    expect(warning.locator(".verdict")).to_have_text(
        "Warning: this message failed sender verification. It may not really come from bank.test."
    )
    warning.locator("summary").click()
    expect(warning.locator("li")).to_contain_text(
        ["DKIM: the message is not signed.", "SPF: bank.test does not allow the server that sent it."]
    )
    expect(warning.locator("li").last).to_contain_text("DMARC: the message fails the policy of bank.test (p=none")
    assert_full_page(page)

    # Mail that never crossed our MX has nothing to show.
    page.goto(f"{web_server.url}/m/{shown_locally.pk}/")
    expect(page.locator("#reader .subject")).to_have_text("Written here")
    expect(page.locator("#reader .sender-check")).to_have_count(0)


def test_allow_and_block_lists_in_the_settings_decide_the_folder(web_server, sized_page, mx) -> None:
    page = sized_page
    sign_in(page, web_server)
    page.goto(f"{web_server.url}/settings/")
    page.get_by_role("link", name="Allowed and blocked senders").click()
    expect(page).to_have_url(f"{web_server.url}/settings/senders/")
    assert_full_page(page)
    expect(page.locator("main")).to_contain_text("No blocked senders.")

    page.fill("#sender", "Offers.Example")
    page.click("#sender-form button[value=block]")
    expect(page.locator(".notice")).to_contain_text("offers.example is on your list of blocked senders.")
    expect(page.get_by_role("list", name="Blocked senders")).to_have_text("offers.example Remove")
    page.fill("#sender", "carol@Müller.example")
    page.click("#sender-form button[value=allow]")
    expect(page.get_by_role("list", name="Allowed senders")).to_contain_text("carol@müller.example")
    assert SenderRule.objects.filter(sender="carol@xn--mller-kva.example", allow=True).count() == 1

    page.fill("#sender", "not a domain")
    page.click("#sender-form button[value=block]")
    expect(page.locator(".notice.error")).to_have_text("not a domain is not an address or a domain name.")
    expect(page.locator("#sender")).to_have_value("not a domain")
    assert_full_page(page)

    # The MX weighs the list: mail from the blocked domain (a subdomain of it too) goes to Junk.
    assert send(mx, mail("Big sale", sender="deals@news.offers.example"), "deals@news.offers.example") == 250
    assert stored("Big sale").mailbox.role == Role.JUNK
    page.goto(f"{web_server.url}/f/{stored('Big sale').mailbox_id}/")
    expect(page.locator("#list .row")).to_contain_text(["Big sale"])

    # Allowing a blocked entry moves it over; removing it empties the list.
    page.goto(f"{web_server.url}/settings/senders/")
    page.fill("#sender", "offers.example")
    page.click("#sender-form button[value=allow]")
    expect(page.locator("main")).to_contain_text("No blocked senders.")
    page.get_by_role("button", name="Remove offers.example").click()
    expect(page.locator(".notice")).to_contain_text("Removed from your list.")
    expect(page.get_by_role("list", name="Allowed senders")).to_have_text("carol@müller.example Remove")
    assert list(SenderRule.objects.values_list("sender", "allow")) == [("carol@xn--mller-kva.example", True)]
