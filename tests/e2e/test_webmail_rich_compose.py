"""Writing HTML mail in the rich editor (Squire, from the project's static files) in a real browser."""

from __future__ import annotations

import email
import os
import re
from email import policy

from playwright.sync_api import expect

from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    deliver,
    folder,
    sign_in,
    sized_page_fixture,
    type_in_message,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000185d0d6a40000000049454e44ae426082"
)

DROP_IMAGE = """([bytes]) => {
    const file = new File([new Uint8Array(bytes)], "dot.png", { type: "image/png" });
    const transfer = new DataTransfer();
    transfer.items.add(file);
    const editor = document.querySelector("#editor");
    editor.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
}"""


def test_formatting_lists_and_a_dropped_image_are_sent_as_html_with_a_text_part(web_server, sized_page, alice):
    page = sized_page
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#compose-link")
    assert_full_page(page)
    expect(page.locator("#editor")).to_be_visible()
    expect(page.locator("#id_body")).to_be_hidden()
    page.fill("#id_to", alice.address)
    page.fill("#id_subject", "Rich")
    type_in_message(page, "Hello ")
    page.keyboard.press("Control+b")
    page.keyboard.type("bold")
    page.keyboard.press("Control+b")
    page.keyboard.press("Enter")
    page.click(".editor-toolbar [data-format=makeUnorderedList]")
    page.keyboard.type("first")
    page.keyboard.press("Enter")
    page.keyboard.type("second")
    page.evaluate(DROP_IMAGE, [list(PNG)])
    expect(page.locator("#editor img")).to_have_count(1)
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent")

    received = Message.objects.get(mailbox=folder(alice, Role.INBOX), subject="Rich")
    parsed = email.message_from_bytes(bytes(received.body.raw), policy=policy.default)
    plain = parsed.get_body(("plain",)).get_content()
    assert "Hello bold" in plain
    assert "- first" in plain
    assert "- second" in plain
    html = parsed.get_body(("html",)).get_content()
    assert "<b>bold</b>" in html or "<strong>bold</strong>" in html
    assert re.search(r"<ul><li>(<[a-z]+>)*first", html)
    [image] = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
    assert image.get_content() == PNG
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert "data:" not in html


def test_reply_to_html_only_mail_quotes_its_html_safely(web_server, sized_page, alice) -> None:
    page = sized_page
    original = deliver(
        alice,
        subject="Newsletter",
        text=None,
        html='<h1 style="color:#2458c6">News</h1><p>Read <a href="https://example.org/x">more</a></p>'
        '<img src="x" onerror="window.hacked=1"><script>window.hacked=2</script>',
    )
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/compose/?reply={original.pk}")
    quote = page.locator("#editor blockquote")
    expect(quote.locator("h1")).to_have_text("News")
    expect(quote.locator("a")).to_have_attribute("href", "https://example.org/x")
    expect(page.locator("#editor [onerror], #editor script")).to_have_count(0)
    assert page.evaluate("window.hacked") is None
    type_in_message(page, "Thanks!", at="Home")
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent")
    sent = Message.objects.get(mailbox=folder(alice, Role.SENT))
    parsed = email.message_from_bytes(bytes(sent.body.raw), policy=policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert '<blockquote type="cite">' in html
    assert "News</h1>" in html
    assert "onerror" not in html
    assert "<script" not in html
    assert parsed.get_body(("plain",)).get_content().startswith("Thanks!")


# An image on the system clipboard, as a screenshot tool leaves it: 3 x 2 pixels drawn on a canvas (the clipboard
# takes only images it can decode, and stores them re-encoded).
COPY_IMAGE = """async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 3;
    canvas.height = 2;
    const context = canvas.getContext("2d");
    context.fillStyle = "#2458c6";
    context.fillRect(0, 0, 3, 2);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    await navigator.clipboard.write([new ClipboardItem({ "image/png": blob })]);
}"""


def test_an_image_pasted_from_the_clipboard_is_sent_as_an_inline_part(web_server, sized_page, alice) -> None:
    page = sized_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server.url)
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#compose-link")
    assert_full_page(page)
    page.fill("#id_to", alice.address)
    page.fill("#id_subject", "Screenshot")
    type_in_message(page, "Here it is: ")
    page.evaluate(COPY_IMAGE)
    page.click("#editor")
    page.keyboard.press("Control+End")
    page.keyboard.press("Control+v")
    expect(page.locator("#editor img")).to_have_count(1)
    assert page.locator("#editor img").get_attribute("src").startswith("data:image/png;base64,")
    page.click("button[value=send]")
    expect(page.locator(".notice")).to_contain_text("Message sent")
    assert_full_page(page)

    received = Message.objects.get(mailbox=folder(alice, Role.INBOX), subject="Screenshot")
    parsed = email.message_from_bytes(bytes(received.body.raw), policy=policy.default)
    html = parsed.get_body(("html",)).get_content()
    [image] = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
    data = image.get_content()
    assert data[:8] == PNG[:8]
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (3, 2)  # IHDR width, height
    assert image.get_content_disposition() == "inline"
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert "data:" not in html
    assert "Here it is:" in parsed.get_body(("plain",)).get_content()
