"""The webmail in a real browser: Debian's Chromium driven by Playwright against uvicorn serving the ASGI app."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import expect

from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    browser_fixture,
    close_context,
    deliver,
    folder,
    page_fixture,
    sign_in,
    type_in_message,
)

pytestmark = BROWSER_MARKS
# Screenshots go to docs/screenshots only when asked for explicitly (a test run leaves the checkout clean):
#   MAILSITE_SCREENSHOT_DIR=docs/screenshots .venv/bin/python -m pytest tests/e2e/test_webmail_browser.py -k screenshots
SCREENSHOT_DIR = os.environ.get("MAILSITE_SCREENSHOT_DIR")
# Playwright's sync API runs an event loop in this thread; the tests' own ORM calls are plain blocking calls
# between browser steps, which is what Django's guard exists to catch in real async code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_sign_in_open_a_message_and_sign_out(web_server, page, alice) -> None:
    deliver(alice, subject="Welcome aboard", text="Glad to have you. Docs: https://docs.example.org/start")
    page.goto(f"{web_server.url}/login/")
    page.fill("input[name=address]", alice.address)
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("address or password is wrong")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    row = page.locator("#list .row", has_text="Welcome aboard")
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    row.locator(".subject").click()
    expect(page.locator("#reader .subject")).to_have_text("Welcome aboard")
    expect(page.locator("#reader .plain a")).to_have_attribute("href", "https://docs.example.org/start")
    expect(row).not_to_have_class(re.compile(r"\bunread\b"))
    assert page.url.endswith(f"/m/{Message.objects.get().pk}/")
    page.click("form.logout button")
    expect(page.locator("input[name=password]")).to_be_visible()
    page.goto(f"{web_server.url}/")
    assert "/login/" in page.url


def test_send_with_attachment_to_self_arrives_live_then_reply_shows_the_conversation(
    web_server, page, alice, tmp_path
) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    inbox_page = page
    compose = page.context.new_page()
    compose.goto(f"{web_server.url}/compose/")
    compose.fill("#id_to", alice.address)
    compose.fill("#id_subject", "Live with attachment")
    type_in_message(compose, "See the file.")
    attachment = tmp_path / "notes.txt"
    attachment.write_text("attached notes")
    compose.set_input_files("#id_attachments", str(attachment))
    compose.click("button[value=send]")
    expect(compose.locator(".notice")).to_contain_text("Message sent")
    # The first tab never reloads: the row arrives through server-sent events.
    row = inbox_page.locator("#list .row", has_text="Live with attachment")
    expect(row).to_be_visible(timeout=2000)
    expect(row.locator(".clip")).to_be_visible()
    row.locator(".subject").click()
    expect(inbox_page.locator("#reader .attachments a")).to_have_text("notes.txt")
    with inbox_page.expect_download() as download:
        inbox_page.click("#reader .attachments a")
    assert download.value.suggested_filename == "notes.txt"
    assert Path(download.value.path()).read_text() == "attached notes"
    inbox_page.keyboard.press("r")
    inbox_page.wait_for_url(re.compile(r"/compose/\?reply="))
    assert inbox_page.input_value("#id_subject") == "Re: Live with attachment"
    type_in_message(inbox_page, "Thanks, got it.", at="Home")
    inbox_page.click("button[value=send]")
    expect(inbox_page.locator(".notice")).to_contain_text("Message sent")
    inbox_page.locator("#list .row", has_text="Re: Live with attachment").locator(".subject").click()
    inbox_page.click("#reader a:has-text('Conversation')")
    expect(inbox_page.locator(".thread-item")).to_have_count(4)  # two in Inbox, two copies in Sent
    # The reply was written in the rich editor: its HTML part is shown, in the message frame.
    reply = inbox_page.frame_locator(".conversation iframe.mail-frame").last
    expect(reply.locator("body")).to_contain_text("Thanks, got it.")
    expect(reply.locator("blockquote")).to_contain_text("See the file.")
    expect(inbox_page.locator(".conversation .headers")).to_contain_text(["Sent"])


def test_new_mail_appears_without_reload(web_server, page, alice) -> None:
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.evaluate("window.notReloaded = true")
    deliver(alice, subject="Delivered by SMTP just now")
    expect(page.locator("#list .row", has_text="Delivered by SMTP just now")).to_be_visible(timeout=2000)
    expect(page.locator("#folders .folder.current .count")).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True


def test_search_move_and_delete(web_server, page, alice) -> None:
    deliver(alice, subject="Invoice 42", sender="Billing <billing@shop.test>")
    deliver(alice, subject="Holiday photos", text="the beach was lovely")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.keyboard.press("/")
    page.keyboard.type("lovely")
    page.keyboard.press("Enter")
    expect(page.locator("#list .row")).to_have_count(1)
    expect(page.locator("#list .row")).to_contain_text("Holiday photos")
    page.goto(f"{web_server.url}/")
    page.locator("#list .row", has_text="Invoice 42").locator("input[name=uid]").check()
    page.select_option("select[name=target]", label="Archive")
    page.click("button[value=move]")
    expect(page.locator(".notice")).to_contain_text("Moved 1 message(s) to Archive")
    expect(page.locator("#list .row", has_text="Invoice 42")).to_have_count(0)
    assert Message.objects.get(subject="Invoice 42").mailbox == folder(alice, Role.ARCHIVE)
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page.locator("#reader .subject")).to_have_text("Holiday photos")
    page.keyboard.press("#")
    expect(page.locator(".notice")).to_contain_text("Moved 1 message(s) to Trash")
    assert Message.objects.get(subject="Holiday photos").mailbox == folder(alice, Role.TRASH)
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()


def test_screenshots_desktop_phone_and_dark(web_server, browser, alice, tmp_path) -> None:
    shots_dir = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    deliver(
        alice,
        subject="Quarterly numbers",
        sender="Carol Jones <carol@billing.test>",
        text="Hi Alice,\n\nthe quarterly numbers are in the attached sheet.\n\nCarol",
        attachments=[("q3.csv", "text/csv", b"a,b\n1,2\n")],
    )
    for n in range(6):
        deliver(alice, subject=f"Team update #{n + 1}", sender=f"Member {n} <m{n}@example.com>", text="Status: fine")
    html = deliver(
        alice,
        subject="Newsletter",
        text=None,
        html='<h1 style="color:#2458c6">News</h1><p>Remote image: <img src="https://cdn.test/x.png"></p>',
    )
    shots_dir.mkdir(parents=True, exist_ok=True)
    shots = [
        ("desktop", {"viewport": {"width": 1280, "height": 800}}),
        ("phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}),
        ("dark", {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"}),
    ]
    for name, options in shots:
        context = browser.new_context(**options)
        page = context.new_page()
        sign_in(page, web_server.url, alice.address, PASSWORD)
        page.screenshot(path=str(shots_dir / f"{name}-list.png"))
        page.goto(f"{web_server.url}/m/{Message.objects.get(subject='Quarterly numbers').pk}/")
        expect(page.locator("#reader .subject")).to_be_visible()
        page.screenshot(path=str(shots_dir / f"{name}-message.png"))
        if name == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            expect(page.locator("#list")).to_be_hidden()
        if name == "desktop":
            page.goto(f"{web_server.url}/m/{html.pk}/")
            expect(page.locator(".images-note")).to_be_visible()
            page.screenshot(path=str(shots_dir / "desktop-html-blocked-images.png"))
            page.goto(f"{web_server.url}/compose/?reply={html.pk}")
            page.screenshot(path=str(shots_dir / "desktop-compose.png"))
        if name == "dark":
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(22, 24, 28)"
        close_context(page)
