"""The XSS corpus (tests/data/xss/): hostile HTML mail opened in Chromium runs nothing and fetches nothing.

Every payload tries to reach a sink server on loopback (by script, style, refresh, form, frame or image). The
sink must stay silent until the user clicks "show images", and then see only the image request.
"""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.webmail_support import BROWSER_MARKS, close_context, deliver, launch_chromium, sign_in

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "xss").glob("*.html"))
pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see test_webmail_browser.py


class Sink(http.server.ThreadingHTTPServer):
    """Records every request path; any hit before "show images" is a leak."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                sink.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def sink():
    server = Sink()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(web_server):
    playwright, chromium = launch_chromium()
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(5000)
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    close_context(page)
    chromium.close()
    playwright.stop()


@pytest.fixture
def alice(make_account, transactional_db, page, web_server):
    account = make_account("alice@example.com")
    page.context.clear_cookies()
    sign_in(page, web_server.url, account.address, PASSWORD)
    return account


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 20


def test_hostile_html_runs_nothing_and_fetches_nothing(web_server, sink, page, alice) -> None:
    # One account and one sign-in for the whole corpus: a database reset per file would cost more than the file.
    leaks: dict[str, object] = {}
    for path in CORPUS:
        markup = path.read_text().replace("{{SINK}}", sink.url)
        message = deliver(alice, subject=path.stem, text=None, html=markup)
        sink.hits.clear()
        page.goto(f"{web_server.url}/m/{message.pk}/")
        frame = page.frame_locator("iframe.mail-frame")
        expect(frame.locator("body")).to_be_attached()
        for link in page.frames[-1].locator("a, button").all():
            link.click(timeout=1000, no_wait_after=True)  # links open outside the sandbox only for http(s)
        page.wait_for_timeout(250)  # time for any refresh, deferred script or lazy fetch to fire
        problems = {
            "requests": list(sink.hits),
            "dialogs": list(page.dialogs),
            "navigated": page.url != f"{web_server.url}/m/{message.pk}/",
            "extra frames": page.evaluate("document.querySelectorAll('iframe:not(.mail-frame)').length"),
        }
        if any(problems.values()):
            leaks[path.stem] = problems
    assert leaks == {}


def test_show_images_fetches_only_the_images(web_server, sink, page, alice) -> None:
    markup = (Path(__file__).resolve().parents[1] / "data" / "xss" / "17-remote-image.html").read_text()
    message = deliver(alice, subject="tracker", text=None, html=markup.replace("{{SINK}}", sink.url))
    sink.hits.clear()
    page.goto(f"{web_server.url}/m/{message.pk}/")
    expect(page.locator(".images-note")).to_be_visible()
    page.wait_for_timeout(200)
    assert sink.hits == []
    page.click("a.show-images")
    page.wait_for_timeout(500)
    assert sink.hits == ["/tracker.gif"]
