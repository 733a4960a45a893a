"""Everyday actions in a real browser, at desktop and phone width: star click, Archive, print view, view source."""

from __future__ import annotations

import os
import re
import zipfile

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
    page_fixture,
    sign_in,
    sized_page_fixture,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_a_click_on_the_star_flags_the_message_in_place(web_server, sized_page, alice) -> None:
    page = sized_page
    message = deliver(alice, subject="Keep this")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.evaluate("window.notReloaded = true")
    star = page.locator("#list .row", has_text="Keep this").locator("[data-star]")
    star.click()
    expect(star).to_have_class(re.compile(r"\bon\b"))
    expect(star).to_have_attribute("aria-pressed", "true")
    message.refresh_from_db()
    assert message.flagged
    star.click()
    expect(star).not_to_have_class(re.compile(r"\bon\b"))
    message.refresh_from_db()
    assert not message.flagged
    assert page.evaluate("window.notReloaded") is True
    assert page.url.endswith(f"/f/{message.mailbox_id}/")  # the row did not open


def test_archive_from_the_list_and_from_the_message(web_server, sized_page, alice) -> None:
    page = sized_page
    deliver(alice, subject="Done with this")
    second = deliver(alice, subject="And this")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.locator("#list .row", has_text="Done with this").locator("input[name=uid]").check()
    page.click("#list button[value=archive]")
    expect(page.locator(".notice")).to_contain_text("Archived 1 message(s)")
    assert_full_page(page)
    assert Message.objects.get(subject="Done with this").mailbox == folder(alice, Role.ARCHIVE)
    page.goto(f"{web_server.url}/m/{second.pk}/")
    page.click("#reader button[value=archive]")
    expect(page.locator(".notice")).to_contain_text("Archived 1 message(s)")
    assert_full_page(page)
    assert page.url.endswith(f"/f/{folder(alice, Role.INBOX).pk}/")
    assert Message.objects.get(subject="And this").mailbox == folder(alice, Role.ARCHIVE)


def test_print_view_and_view_source(web_server, sized_page, alice) -> None:
    page = sized_page
    shown = deliver(
        alice, subject="Boarding pass", text="Seat 12A, gate 4", attachments=[("pass.pdf", "application/pdf", b"%PDF")]
    )
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/m/{shown.pk}/")
    with page.context.expect_page() as opened:
        page.click("#reader a:has-text('Print')")
    printed = opened.value
    expect(printed.locator("h1.subject")).to_have_text("Boarding pass")
    expect(printed.locator(".plain")).to_contain_text("Seat 12A, gate 4")
    expect(printed.locator(".print-attachments")).to_contain_text("pass.pdf")
    expect(printed.locator("[data-print]")).to_be_visible()
    printed.close()
    with page.context.expect_page() as opened:
        page.click("#reader a:has-text('View source')")
    source = opened.value
    source.wait_for_load_state()
    assert source.url.endswith(f"/m/{shown.pk}/source/")
    text = source.locator("body").inner_text()
    assert "Subject: Boarding pass" in text
    assert 'filename="pass.pdf"' in text
    source.close()
    response = page.request.get(f"{web_server.url}/m/{shown.pk}/source/")
    assert response.body() == bytes(shown.body.raw)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_undo_puts_moved_mail_back(web_server, sized_page, alice) -> None:
    page = sized_page
    deliver(alice, subject="Oops, not this one")
    deliver(alice, subject="Nor this one")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    for subject in ("Oops, not this one", "Nor this one"):
        page.locator("#list .row", has_text=subject).locator("input[name=uid]").check()
    page.click("#list button[value=trash]")
    expect(page.locator(".notice")).to_contain_text("Moved 2 message(s) to Trash")
    assert Message.objects.filter(mailbox=folder(alice, Role.TRASH)).count() == 2
    page.click(".notice form.undo button")
    expect(page.locator(".notice")).to_contain_text("Undone: 2 message(s) back in INBOX")
    assert_full_page(page)
    expect(page.locator("#list .row")).to_have_count(2)
    assert Message.objects.filter(mailbox=folder(alice, Role.INBOX)).count() == 2
    # The offer is made once: the next page has none.
    page.reload()
    expect(page.locator("form.undo")).to_have_count(0)


def test_the_offer_to_undo_goes_away_after_a_few_seconds(web_server, page, alice) -> None:
    deliver(alice, subject="Archive me")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.locator("#list .row", has_text="Archive me").locator("input[name=uid]").check()
    page.click("#list button[value=archive]")
    expect(page.locator("form.undo")).to_be_visible()
    expect(page.locator("form.undo")).to_have_count(0, timeout=15000)  # waiting, as a user would, for 10 s


def test_on_a_phone_a_message_has_a_way_back_to_its_folder(web_server, sized_page, alice) -> None:
    page = sized_page
    deliver(alice, subject="Read me on the go")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.locator("#list .row", has_text="Read me on the go").locator(".subject").click()
    expect(page.locator("#reader .subject")).to_have_text("Read me on the go")
    back = page.locator("#reader a.back")
    if page.viewport_size["width"] > 1000:
        expect(back).to_be_hidden()  # the list stays beside the message
        return
    expect(page.locator("#list")).to_be_hidden()
    back.click()
    expect(page.locator("#list .row", has_text="Read me on the go")).to_be_visible()
    assert_full_page(page)


def test_report_junk_and_not_junk(web_server, sized_page, alice) -> None:
    page = sized_page
    spam = deliver(alice, subject="You won a prize", sender="Prize <win@spam.test>")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/m/{spam.pk}/")
    page.click("#reader button[value=junk]")
    expect(page.locator(".notice")).to_contain_text("Reported 1 message(s) as junk")
    assert_full_page(page)
    assert Message.objects.get(pk=spam.pk).mailbox == folder(alice, Role.JUNK)
    page.goto(f"{web_server.url}/f/{folder(alice, Role.JUNK).pk}/")
    page.locator("#list .row", has_text="You won a prize").locator("input[name=uid]").check()
    page.click("#list button[value=notjunk]")
    expect(page.locator(".notice")).to_contain_text("Moved 1 message(s) to INBOX: not junk")
    assert_full_page(page)
    assert Message.objects.get(pk=spam.pk).mailbox == folder(alice, Role.INBOX)


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000185d0d6a40000000049454e44ae426082"
)


def test_attachments_open_in_the_browser_or_download_all_as_a_zip(web_server, sized_page, alice) -> None:
    page = sized_page
    files = [
        ("dot.png", "image/png", PNG),
        ("notes.txt", "text/plain", b"plain notes"),
        ("notes.txt", "text/plain", b"other notes"),
        ("page.html", "image/png", b"<script>alert(1)</script>"),  # an "image" that is HTML
    ]
    shown = deliver(alice, subject="Files", attachments=files)
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/m/{shown.pk}/")
    items = page.locator("#reader .attachments li")
    expect(items.filter(has_text="dot.png").locator("a.preview")).to_be_visible()
    expect(items.filter(has_text="notes.txt").locator("a.preview")).to_have_count(0)
    with page.context.expect_page() as opened:
        items.filter(has_text="dot.png").locator("a.preview").click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert viewer.evaluate("document.images.length && document.images[0].naturalWidth") == 1
    viewer.close()
    href = items.filter(has_text="page.html").locator("a.preview").get_attribute("href")
    response = page.request.get(f"{web_server.url}{href}")
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    with page.expect_download() as download:
        page.click("#reader .attachments a:has-text('Download all')")
    assert download.value.suggested_filename == "Files attachments.zip"
    with zipfile.ZipFile(download.value.path()) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    assert contents == {
        "dot.png": PNG,
        "notes.txt": b"plain notes",
        "notes (2).txt": b"other notes",
        "page.html": b"<script>alert(1)</script>",
    }


def _pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (PDF 1.4: catalog, pages, page, content stream, font; then the xref table)."""
    stream = f"BT /F1 18 Tf 20 40 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def test_a_pdf_attachment_opens_in_the_browsers_own_viewer(web_server, sized_page, alice) -> None:
    page = sized_page
    shown = deliver(alice, subject="Invoice", attachments=[("invoice.pdf", "application/pdf", _pdf("Invoice 42"))])
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/m/{shown.pk}/")
    assert_full_page(page)
    downloads: list[str] = []
    page.context.on("page", lambda opened: opened.on("download", lambda d: downloads.append(d.suggested_filename)))
    item = page.locator("#reader .attachments li", has_text="invoice.pdf")
    with page.context.expect_page() as opened:
        item.locator("a.preview").click()
    viewer = opened.value
    viewer.wait_for_load_state()
    # Chromium's PDF viewer holds the document: the tab shows it, nothing is downloaded.
    assert viewer.evaluate("document.contentType") == "application/pdf"
    assert viewer.url.endswith("?view=1")
    viewer.wait_for_timeout(500)
    assert downloads == []
    viewer.close()
    response = page.request.get(viewer.url)
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "sandbox" not in policy  # Chromium's viewer does not open a PDF served sandboxed
    # The plain link downloads it.
    with page.expect_download() as download:
        item.locator("a[download]").click()
    assert download.value.suggested_filename == "invoice.pdf"
