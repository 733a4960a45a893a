"""The recycle bin in a real browser: a message removed by a phone's EXPUNGE is restored from the webmail."""

from __future__ import annotations

import os

from playwright.sync_api import expect

from mailboxes import actions
from mailboxes.models import Message, RecycledMessage, Role
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    deliver,
    folder,
    page_fixture,
    sign_in,
    sized_page_fixture,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_restore_a_message_expunged_elsewhere(web_server, sized_page, alice) -> None:
    page = sized_page
    message = deliver(alice, subject="Boarding pass")
    inbox = folder(alice, Role.INBOX)
    actions.set_flags(alice, inbox.pk, [message.uid], ["\\Deleted"], actions.FlagMode.ADD)
    actions.expunge(alice, inbox.pk)
    sign_in(page, web_server.url, alice.address, PASSWORD)
    expect(page.locator("#list .row", has_text="Boarding pass")).to_have_count(0)

    page.goto(f"{web_server.url}/settings/recycle-bin/")
    assert_full_page(page)
    page.get_by_label("Select Boarding pass").check()
    page.get_by_role("button", name="Restore selected").click()
    expect(page.locator(".notice")).to_contain_text("Restored 1 message")
    assert_full_page(page)
    expect(page.locator(".recycle-bin .empty")).to_be_visible()
    assert not RecycledMessage.objects.exists()

    page.goto(f"{web_server.url}/f/{inbox.pk}/")
    expect(page.locator("#list .row", has_text="Boarding pass")).to_be_visible()
    assert Message.objects.filter(mailbox=inbox, subject="Boarding pass").count() == 1
