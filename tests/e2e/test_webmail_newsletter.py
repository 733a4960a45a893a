"""HTML newsletters keep their <style>: scoped to the message, without fetches until "Show images"."""

from __future__ import annotations

import os

from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    browser_fixture,
    deliver,
    sign_in,
    sized_page_fixture,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

NEWSLETTER = """<html><head><style type="text/css">
body { background-color: rgb(250, 240, 230); margin: 0 }
.title { color: rgb(36, 88, 198); font-size: 28px !important }
td.cell { padding: 12px }
.hero { background: url(https://cdn.example.test/hero.png) no-repeat; height: 40px }
@media only screen and (max-width: 600px) { .title { font-size: 20px !important } }
</style></head><body><h1 class="title">Spring sale</h1>
<table><tr><td class="cell">Everything half price</td></tr></table><div class="hero"></div></body></html>"""


def test_newsletter_styles_apply_inside_the_message_only(web_server, sized_page, alice) -> None:
    page = sized_page
    shown = deliver(alice, subject="Spring sale", text=None, html=NEWSLETTER)
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/m/{shown.pk}/")
    frame = page.frame_locator("iframe.mail-frame")
    title = frame.locator("h1.title")
    expect(title).to_have_css("color", "rgb(36, 88, 198)")
    narrow = page.locator("iframe.mail-frame").bounding_box()["width"] <= 600  # the @media rule sees the frame
    expect(title).to_have_css("font-size", "20px" if narrow else "28px")
    expect(frame.locator("td.cell")).to_have_css("padding", "12px")
    expect(frame.locator(".mail-root")).to_have_css("background-color", "rgb(250, 240, 230)")
    # The remote background waits for "Show images", like any remote image.
    expect(page.locator(".images-note")).to_be_visible()
    expect(frame.locator(".hero")).to_have_css("background-image", "none")
    page.click("a.show-images")
    expect(frame.locator(".hero")).to_have_css("background-image", 'url("https://cdn.example.test/hero.png")')
    # Nothing of the message's sheet reaches the application page around the frame.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(250, 240, 230)"
