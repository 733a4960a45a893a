"""The settings page in a real browser: name, signature, time zone (detected at the first sign-in), reading pane
and page size, each seen where it matters."""

from __future__ import annotations

import email
import os
import re
from email import policy

import pytest
from playwright.sync_api import expect

from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    VIEWPORTS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    close_context,
    deliver,
    folder,
    sign_in,
    type_in_message,
)
from webmail.models import Preferences

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(params=sorted(VIEWPORTS))
def tokyo_page(request, browser, transactional_db):
    """A browser in Tokyo, at desktop and at phone width."""
    context = browser.new_context(timezone_id="Asia/Tokyo", **VIEWPORTS[request.param])
    page = context.new_page()
    page.set_default_timeout(5000)
    yield page
    close_context(page)


def test_time_zone_is_detected_at_the_first_sign_in(web_server, tokyo_page, alice) -> None:
    page = tokyo_page
    shown = deliver(alice, subject="Sent at ten UTC")  # Date: Mon, 03 Mar 2025 10:00:00 +0000
    sign_in(page, web_server.url, alice.address, PASSWORD)
    assert Preferences.objects.get(account=alice).time_zone == "Asia/Tokyo"
    page.goto(f"{web_server.url}/m/{shown.pk}/")
    expect(page.locator("#reader .headers")).to_contain_text("Mon, 3 Mar 2025 19:00")
    assert_full_page(page)


def test_settings_change_name_signature_zone_pane_and_page_size(web_server, tokyo_page, alice) -> None:
    page = tokyo_page
    for n in range(30):
        deliver(alice, subject=f"Bulk {n:02d}")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    expect(page.locator("#list .row")).to_have_count(30)
    page.click("a.settings-link")
    assert_full_page(page)
    page.fill("#id_display_name", "Alice Liddell")
    page.fill("#id_signature", "Alice\nWonderland Ltd")
    page.select_option("#id_time_zone", "Europe/Paris")
    page.uncheck("#id_reading_pane")
    page.select_option("#id_page_size", "25")
    page.click("#settings-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Settings saved")
    assert_full_page(page)
    expect(page.locator("#id_time_zone")).to_have_value("Europe/Paris")

    page.click("#compose-link")
    assert page.input_value("#id_body") == "\n\n-- \nAlice\nWonderland Ltd\n"
    page.fill("#id_to", alice.address)
    page.fill("#id_subject", "Signed")
    type_in_message(page, "Hello me.", at="Home")
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent")
    received = Message.objects.get(mailbox=folder(alice, Role.INBOX), subject="Signed")
    parsed = email.message_from_bytes(bytes(received.body.raw), policy=policy.default)
    assert parsed["From"] == "Alice Liddell <alice@example.com>"
    plain = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain == "Hello me.\n\n-- \nAlice\nWonderland Ltd\n"
    assert "Wonderland Ltd" in parsed.get_body(("html",)).get_content()

    # 25 messages a page, and without the reading pane a message opens in the list's place.
    expect(page.locator("#list .row")).to_have_count(25)
    bulk = Message.objects.get(subject="Bulk 29")
    page.locator("#list .row", has_text="Bulk 29").locator(".subject").click()
    page.wait_for_url(re.compile(rf"/m/{bulk.pk}/$"))
    expect(page.locator("#reader .subject")).to_have_text("Bulk 29")
    expect(page.locator("#list")).to_be_hidden()
    # Paris is an hour ahead of UTC in March.
    expect(page.locator("#reader .headers")).to_contain_text("Mon, 3 Mar 2025 11:00")
    assert_full_page(page)


def test_tab_title_counts_unread_mail_live(web_server, tokyo_page, alice) -> None:
    page = tokyo_page
    deliver(alice, subject="One")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    expect(page).to_have_title(re.compile(r"^\(1\) INBOX"))
    deliver(alice, subject="Two")
    expect(page).to_have_title(re.compile(r"^\(2\) INBOX"), timeout=5000)


def test_undo_send_holds_the_message_for_the_chosen_delay(web_server, tokyo_page, alice) -> None:
    page = tokyo_page
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/settings/")
    page.select_option("#id_undo_send_seconds", "5")
    page.click("#settings-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Settings saved")
    page.click("#compose-link")
    page.fill("#id_to", alice.address)
    page.fill("#id_subject", "Second thoughts")
    type_in_message(page, "Maybe not.")
    page.click("button[value=send]")
    expect(page.locator(".send-countdown")).to_contain_text("Sending in")
    page.click(".send-countdown button")
    expect(page.locator(".draft-status")).to_contain_text("Not sent")
    assert page.url.endswith("/compose/")
    assert page.input_value("#id_body") == "Maybe not."
    page.wait_for_timeout(6000)  # past the delay: nothing leaves once undone
    assert not Message.objects.filter(subject="Second thoughts", mailbox=folder(alice, Role.SENT)).exists()
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent", timeout=15000)  # after the 5 s, by itself
    assert Message.objects.filter(subject="Second thoughts", mailbox=folder(alice, Role.SENT)).exists()


def test_html_signature_goes_into_the_rich_editor_cleaned(web_server, tokyo_page, alice) -> None:
    page = tokyo_page
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/settings/")
    page.fill("#id_signature_html", '<b>Alice</b> · <a href="https://alice.test/">alice.test</a><script>x()</script>')
    page.click("#settings-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("Settings saved")
    expect(page.locator("#id_signature_html")).not_to_have_value(re.compile("script"))
    page.click("#compose-link")
    expect(page.locator("#editor b")).to_have_text("Alice")
    expect(page.locator("#editor a")).to_have_attribute("href", "https://alice.test/")
    page.fill("#id_to", alice.address)
    page.fill("#id_subject", "With HTML signature")
    type_in_message(page, "Hi.", at="Home")
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent")
    sent = Message.objects.get(mailbox=folder(alice, Role.SENT))
    parsed = email.message_from_bytes(bytes(sent.body.raw), policy=policy.default)
    assert "<b>Alice</b>" in parsed.get_body(("html",)).get_content()
    plain = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain.startswith("Hi.\n\n-- \nAlice")
