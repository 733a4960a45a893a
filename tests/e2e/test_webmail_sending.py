"""A sent message's delivery to other servers, shown with the Sent copy and pushed to the page as the relay records
each attempt (through the live-update stream, not by asking again and again)."""

from __future__ import annotations

import os

from playwright.sync_api import expect

from mailboxes.actions import outbound
from mailboxes.models import Message, Role
from relay.deliver import Reply
from relay.models import OutboundRecipient
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    folder,
    sign_in,
    sized_page_fixture,
    type_in_message,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _attempt(address: str, reply: Reply) -> None:
    """One attempt of the relay for `address`, recorded by the relay's own actions (no remote server here)."""
    row = OutboundRecipient.objects.get(address=address)
    outbound.retry_now([row.pk])
    claimed = outbound.claim(row.message_id, row.domain)
    assert claimed is not None
    outbound.record(claimed, {address: reply})


def test_sent_message_shows_each_remote_recipient_live(web_server, sized_page, alice) -> None:
    page = sized_page
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#compose-link")
    page.fill("#id_to", "carol@remote.test, dave@other.test")
    page.fill("#id_subject", "Agenda")
    type_in_message(page, "See you there.")
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent")
    sent = Message.objects.get(mailbox=folder(alice, Role.SENT))
    page.goto(f"{web_server.url}/m/{sent.pk}/")
    assert_full_page(page)
    carol = page.locator(".delivery li[data-address='carol@remote.test']")
    dave = page.locator(".delivery li[data-address='dave@other.test']")
    expect(carol).to_contain_text("queued, not tried yet")
    expect(dave).to_contain_text("queued, not tried yet")
    asked: list[str] = []
    page.on("request", lambda request: "/delivery/" in request.url and asked.append(request.url))
    # A user reading the page while nothing happens: the page asks again at most once, when its live stream
    # starts (the server then says anything may have changed), never every few seconds.
    page.wait_for_timeout(11000)
    assert len(asked) <= 1, asked

    _attempt("carol@remote.test", Reply(451, "4.7.1 Greylisted, try again later", "mx.remote.test"))
    expect(carol).to_contain_text("deferred after 1 attempt")  # pushed to the page
    expect(carol).to_contain_text("mx.remote.test: 451 4.7.1 Greylisted, try again later")
    expect(carol.locator(".next")).to_contain_text("next try")

    _attempt("carol@remote.test", Reply(250, "2.0.0 Ok: queued as 4F2A", "mx.remote.test"))
    _attempt("dave@other.test", Reply(550, "5.1.1 No such user", "mx.other.test"))
    expect(carol).to_contain_text("delivered")
    expect(carol).to_contain_text("250 2.0.0 Ok: queued as 4F2A")
    expect(dave).to_contain_text("bounced: not delivered")
    expect(dave).to_contain_text("550 5.1.1 No such user")
    expect(page.locator(".delivery[data-open]")).to_have_count(0)  # nothing under way

    # The bounce report that came back reads as text, not as an attachment called "part-2.deliveryst".
    report = Message.objects.get(mailbox=folder(alice, Role.INBOX))
    page.goto(f"{web_server.url}/m/{report.pk}/")
    expect(page.locator("#reader .part-label").first).to_have_text("Delivery report")
    expect(page.locator("#reader")).to_contain_text("Final-Recipient: rfc822; dave@other.test")
    expect(page.locator("#reader")).to_contain_text("Status: 5.1.1")
    expect(page.locator("#reader")).not_to_contain_text("deliveryst")
