"""Everyday webmail use in a real browser, on PostgreSQL with live updates on: the regressions of issue 19.

Each test acts as a user does (waiting for the live refresh, for autosave) and checks that the page the user
lands on is the whole styled application.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from django.db import connection
from playwright.sync_api import expect

from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    allow_database_connections,
    assert_full_page,
    browser_fixture,
    deliver,
    folder,
    page_fixture,
    sign_in,
    sized_page_fixture,
    type_in_message,
)

pytestmark = BROWSER_MARKS
# Playwright's sync API runs an event loop in this thread; the tests' own ORM calls are plain blocking calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _postgresql(transactional_db) -> None:
    if connection.vendor != "postgresql":
        pytest.fail("these tests need PostgreSQL (live updates): set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")


@pytest.fixture(scope="module", autouse=True)
def _reconnect_after_outages() -> Iterator[None]:
    """Once the module's browser has stopped, drop this thread's own database connection, which the outages cut.

    While Playwright's event loop runs in this thread, Django keeps the tests' connection per context, and
    `allow_database_connections` reopens only that one; the thread's connection, opened before the browser
    started and used by the session's last fixtures, would otherwise stay cut."""
    yield
    connection.close()


def _live_refresh(page, account, subject: str) -> None:
    """Deliver a message and wait until the open list has refreshed itself to show it."""
    deliver(account, subject=subject)
    expect(page.locator("#list .row", has_text=subject)).to_be_visible(timeout=5000)


def _wait_until_nothing_is_kept(page) -> None:
    """Wait (as long as a user would) until the browser no longer keeps a text the server has not stored."""
    for _ in range(100):
        if not page.evaluate("Object.keys(localStorage).filter((key) => key.startsWith('mailsite.compose.'))"):
            return
        page.wait_for_timeout(100)
    raise AssertionError(page.evaluate("JSON.stringify(localStorage)"))


def _tick(page, subject: str) -> None:
    page.locator("#list .row", has_text=subject).locator("input[type=checkbox]").check()


def test_list_toolbar_actions_after_a_live_refresh_land_on_the_full_page(web_server, sized_page, alice) -> None:
    page = sized_page
    deliver(alice, subject="Lunch on Friday")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    _live_refresh(page, alice, "First refresh")
    _tick(page, "Lunch on Friday")
    page.click("#list button[value=read]")
    assert_full_page(page)
    expect(page.locator("#list .row", has_text="Lunch on Friday")).not_to_have_class(re.compile(r"\bunread\b"))

    _live_refresh(page, alice, "Second refresh")
    _tick(page, "Lunch on Friday")
    page.click("#list button[value=star]")
    assert_full_page(page)
    expect(page.locator("#list .row", has_text="Lunch on Friday").locator(".star")).to_have_class(re.compile(r"\bon\b"))

    _live_refresh(page, alice, "Third refresh")
    _tick(page, "Lunch on Friday")
    page.select_option("#list select[name=target]", label="Archive")
    page.click("#list button[value=move]")
    assert_full_page(page)
    expect(page.locator(".notice")).to_contain_text("Moved 1 message(s) to Archive")
    assert Message.objects.get(subject="Lunch on Friday").mailbox == folder(alice, Role.ARCHIVE)

    _live_refresh(page, alice, "Fourth refresh")
    _tick(page, "First refresh")
    page.click("#list button[value=trash]")
    assert_full_page(page)
    expect(page.locator(".notice")).to_contain_text("Moved 1 message(s) to Trash")
    expect(page.locator("#folders .folder.current")).to_contain_text("INBOX")


def test_draft_autosave_stores_the_draft(web_server, page, alice) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#compose-link")
    assert_full_page(page)
    page.fill("#id_to", "carol@remote.test")
    page.fill("#id_subject", "Plans")
    type_in_message(page, "Let us meet on Monday.")
    expect(page.locator(".draft-status")).to_contain_text("Draft saved", timeout=10000)
    draft = Message.objects.get(mailbox=folder(alice, Role.DRAFTS))
    assert draft.subject == "Plans"
    type_in_message(page, " Or Tuesday.")
    expect(page.locator(".draft-status")).to_contain_text("Draft saved", timeout=10000)
    expect(page.locator("#id_draft")).not_to_have_value(str(draft.pk))
    [latest] = Message.objects.filter(mailbox=folder(alice, Role.DRAFTS))
    assert "Or Tuesday." in bytes(latest.body.raw).decode()
    # Everything is saved: leaving asks nothing.
    page.click("a.brand")
    assert_full_page(page)
    expect(page.locator("#list")).to_be_visible()


def test_leaving_the_compose_page_with_unsaved_text_asks_first(web_server, page, alice) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    # The page's clock stands still, so autosave cannot save the text before the user tries to leave.
    page.clock.install()
    page.goto(f"{web_server.url}/compose/")
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.2)
    type_in_message(page, "Half a thought")
    dialogs: list[str] = []

    def answer(dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", answer)
    page.click("a.brand", no_wait_after=True)
    page.wait_for_timeout(500)  # let a navigation the dialog failed to stop show itself
    assert dialogs == ["beforeunload"]
    assert page.url.endswith("/compose/")
    assert page.input_value("#id_body") == "Half a thought"


def _conversation(account, subject: str, count: int) -> list[Message]:
    """`count` messages of one conversation, delivered to the Inbox oldest first."""
    first = deliver(account, subject=subject, text="Message 1")
    messages = [first]
    for n in range(2, count + 1):
        messages.append(
            deliver(
                account,
                subject=f"Re: {subject}",
                text=f"Message {n}",
                headers={"In-Reply-To": first.message_id, "References": first.message_id},
            )
        )
    assert len({m.thread_id for m in messages}) == 1
    return messages


def test_conversation_actions_apply_to_the_whole_conversation(web_server, sized_page, alice) -> None:
    page = sized_page
    _conversation(alice, "Budget", 4)
    deliver(alice, subject="Unrelated")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#list .view-toggle")
    expect(page.locator("#list .row")).to_have_count(2)
    _live_refresh(page, alice, "Live one")
    _tick(page, "Budget")
    page.click("#list button[value=star]")
    assert_full_page(page)
    assert Message.objects.filter(subject__endswith="Budget", flagged=True).count() == 4
    _tick(page, "Budget")
    page.click("#list button[value=trash]")
    assert_full_page(page)
    expect(page.locator(".notice")).to_contain_text("Moved 4 message(s) to Trash")
    assert Message.objects.filter(subject__endswith="Budget", mailbox=folder(alice, Role.TRASH)).count() == 4
    expect(page.locator("#list .row", has_text="Budget")).to_have_count(0)
    expect(page.locator("#list .row", has_text="Unrelated")).to_be_visible()


def test_opening_a_conversation_whose_newest_message_is_in_trash_stays_in_the_folder(
    web_server, sized_page, alice
) -> None:
    page = sized_page
    messages = _conversation(alice, "Party", 3)
    from mailboxes import actions

    actions.move(alice, messages[-1].mailbox_id, [messages[-1].uid], folder(alice, Role.TRASH).pk)
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#list .view-toggle")
    page.locator("#list .row", has_text="Party").locator(".subject").click()
    expect(page.locator(".thread-item")).to_have_count(3)
    assert_full_page(page)
    expect(page.locator("#folders .folder.current")).to_contain_text("INBOX")
    expect(page.locator("#list h1")).to_have_text("INBOX")


def test_send_clicked_while_an_autosave_is_on_its_way_is_sent_once_it_is_answered(web_server, page, alice) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/compose/")
    held: list = []  # autosave requests kept on their way until the user has clicked Send

    def hold_autosaves(route) -> None:
        if b'name="action"\r\n\r\nautosave' in (route.request.post_data_buffer or b""):
            held.append(route)
        else:
            route.continue_()

    page.route("**/compose/**", hold_autosaves)
    page.fill("#id_to", alice.address)
    page.fill("#id_subject", "Sent during autosave")
    type_in_message(page, "Clicked while saving.")
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page autosaves within a few seconds"
    page.click("button[value=send]")
    page.wait_for_timeout(500)
    assert "/compose/" in page.url, "the Send waits for the autosave's answer"
    held.pop().continue_()
    expect(page.locator(".notice")).to_contain_text("Message sent")
    assert Message.objects.filter(mailbox=folder(alice, Role.SENT), subject="Sent during autosave").count() == 1


def test_a_message_over_the_size_limit_is_refused_before_upload(web_server, sized_page, alice) -> None:
    page = sized_page
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/compose/")
    page.fill("#id_to", "carol@remote.test")
    page.fill("#id_subject", "The video")
    # 20 MB of file is about 27 MB once base64-encoded: over the 25 MB that SMTP accepts.
    uploads: list[int] = []  # sizes of the bodies posted (autosave posts the text alone)
    page.on(
        "request", lambda request: request.method == "POST" and uploads.append(len(request.post_data_buffer or b""))
    )
    page.set_input_files(
        "#id_attachments",
        files=[{"name": "video.mp4", "mimeType": "video/mp4", "buffer": b"\0" * (20 * 2**20)}],
        timeout=60000,  # 20 MB handed to the browser through its debugging protocol: slow on a busy machine
    )
    expect(page.locator(".size-error")).to_contain_text("too big")
    expect(page.locator(".size-error")).to_contain_text("25 MB")
    page.click("button[value=send]")
    expect(page.locator(".size-error")).to_be_visible()
    assert page.url.endswith("/compose/")
    assert all(size < 2**20 for size in uploads), uploads
    assert not Message.objects.filter(mailbox=folder(alice, Role.SENT)).exists()
    # A smaller file is fine.
    page.set_input_files(
        "#id_attachments", files=[{"name": "clip.mp4", "mimeType": "video/mp4", "buffer": b"\0" * 2**20}]
    )
    expect(page.locator(".size-error")).to_be_hidden()


def test_sending_to_a_full_mailbox_says_why(web_server, sized_page, alice, make_account) -> None:
    page = sized_page
    make_account("bob@example.com", quota_bytes=100)
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/compose/")
    page.fill("#id_to", "bob@example.com")
    page.fill("#id_subject", "Hello Bob")
    type_in_message(page, "Are you there?")
    page.click("button[value=send]")
    expect(page.locator(".compose-alert")).to_contain_text("bob@example.com: the mailbox is full")
    assert_full_page(page)
    assert page.input_value("#id_body") == "Are you there?"
    assert not Message.objects.filter(mailbox=folder(alice, Role.SENT)).exists()


def test_with_the_database_down_the_text_survives_and_becomes_a_draft(web_server, sized_page, alice) -> None:
    page = sized_page
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/compose/")
    page.fill("#id_to", "carol@remote.test")
    page.fill("#id_subject", "Minutes")
    type_in_message(page, "Point one.")
    expect(page.locator(".draft-status")).to_contain_text("Draft saved", timeout=10000)
    allow_database_connections(False)
    try:
        type_in_message(page, " Point two.")
        # Autosave meets the outage and says so.
        expect(page.locator(".draft-status")).to_contain_text("not saved", timeout=10000)
        with page.expect_response(lambda r: r.url.endswith("/compose/") and r.request.method == "POST") as sent:
            page.click("button[value=send]")
        assert sent.value.status == 503
        expect(page.locator(".compose-alert")).to_contain_text("was not sent")
        assert page.input_value("#id_body") == "Point one. Point two."
        kept = page.evaluate("JSON.stringify(Object.entries(localStorage))")
        assert "Point one. Point two." in kept
        with page.expect_response(lambda r: r.url.endswith("/compose/") and r.request.method == "POST") as saved:
            page.click("button[value=save]")
        assert saved.value.status == 503
    finally:
        allow_database_connections(True)
    # Once the server answers again, the text is saved as a draft by itself.
    expect(page.locator(".draft-status")).to_contain_text("Draft saved", timeout=15000)
    [draft] = Message.objects.filter(mailbox=folder(alice, Role.DRAFTS))
    assert "Point one. Point two." in bytes(draft.body.raw).decode()
    assert not Message.objects.filter(mailbox=folder(alice, Role.SENT)).exists()
    _wait_until_nothing_is_kept(page)
    assert_full_page(page)


def test_text_kept_in_the_browser_during_an_outage_is_saved_as_a_draft_later(web_server, page, alice) -> None:
    """The user gives up during the outage and closes the compose page; the text is saved from another page once
    the server answers again."""
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/compose/")
    allow_database_connections(False)
    try:
        page.fill("#id_to", "carol@remote.test")
        page.fill("#id_subject", "Lost?")
        type_in_message(page, "Not lost.")
        with page.expect_response(lambda r: r.url.endswith("/compose/") and r.request.method == "POST") as saved:
            page.click("button[value=save]")
        assert saved.value.status == 503
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto("about:blank")
    finally:
        allow_database_connections(True)
    page.goto(f"{web_server.url}/")
    assert_full_page(page)
    _wait_until_nothing_is_kept(page)
    [draft] = Message.objects.filter(mailbox=folder(alice, Role.DRAFTS))
    assert draft.subject == "Lost?"
    assert "Not lost." in bytes(draft.body.raw).decode()
