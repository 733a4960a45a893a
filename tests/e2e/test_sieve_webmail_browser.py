"""Filters in a real browser: a user creates a rule and a vacation reply, and mail is filed and answered."""

from __future__ import annotations

import os

from playwright.sync_api import expect

from mailboxes import actions
from mailboxes.models import Mailbox, Message
from relay.models import OutboundMessage
from sieve import rules
from sieve.models import SieveScript
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    browser_fixture,
    page_fixture,
    sign_in,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_create_a_rule_and_a_vacation_reply(web_server, page, alice) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/settings/filters/")
    expect(page.locator("table.rules")).to_contain_text("No rules yet.")
    page.select_option("#id_field", "subject")
    page.select_option("#id_operator", "contains")
    page.fill("#id_value", "invoice")
    page.select_option("#id_action", "move")
    page.fill("#id_target", "Bills")
    page.click("form.rule-form button[type=submit]")
    expect(page.locator("table.rules tr[data-rule='1']")).to_contain_text("invoice")
    expect(page.locator("table.rules tr[data-rule='1']")).to_contain_text("Bills")

    page.click("text=Vacation reply")
    page.check("#id_enabled")
    page.fill("#id_subject", "Out of office")
    page.fill("#id_message", "I am away until Monday.")
    page.fill("#id_days", "3")
    page.click("#vacation-form button[type=submit]")
    expect(page.locator("#id_message")).to_have_value("I am away until Monday.")
    expect(page.locator("#id_enabled")).to_be_checked()

    script = SieveScript.objects.get(account=alice)
    assert script.active
    assert script.name == rules.SCRIPT_NAME
    settings = rules.settings_of(script.content)
    assert settings is not None
    assert [(r.field, r.value, r.action, r.target) for r in settings.rules] == [("subject", "invoice", "move", "Bills")]
    assert (settings.vacation.enabled, settings.vacation.subject, settings.vacation.days) == (True, "Out of office", 3)

    # The rules now apply to mail delivered to Alice.
    raw = b"From: shop@remote.example\r\nTo: alice@example.com\r\nSubject: Your invoice\r\n\r\nPay.\r\n"
    actions.deliver(raw, "shop@remote.example", [alice.address])
    bills = Mailbox.objects.get(account=alice, name="Bills")
    assert Message.objects.get(account=alice).mailbox_id == bills.pk
    assert OutboundMessage.objects.get().sender == ""
