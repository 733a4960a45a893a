"""Shared by the webmail tests: messages built and delivered the way SMTP delivers them."""

from __future__ import annotations

import gc
import itertools
import time
import warnings
from email import policy
from email.message import EmailMessage

import pytest

from mailboxes import actions
from mailboxes.models import Account, Mailbox, Message, Role

# Marks of every browser test module.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.xdist_group("webmail-browser"),
    # WhiteNoise serves static files as a synchronous file iterator, which Django reads whole under ASGI and
    # warns about; harmless for our small CSS and JS files.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
    # Connections the server's per-request threads leave are closed by garbage collection (the session ends any
    # still open before the test database is dropped: end_stray_connections in tests/conftest.py).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

_counter = itertools.count(1)


def make_raw(
    *,
    to: str,
    sender: str = "Bob Sender <bob@remote.test>",
    subject: str = "Hello",
    text: str | None = "Hi there",
    html: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<test-{next(_counter)}@remote.test>"
    msg["Date"] = "Mon, 03 Mar 2025 10:00:00 +0000"
    for name, value in (headers or {}).items():
        msg[name] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def deliver(account: Account, raw: bytes | None = None, **fields) -> Message:
    """Deliver to the account's Inbox as the SMTP listener does; returns the stored message."""
    report = actions.deliver(raw or make_raw(to=account.address, **fields), "bob@remote.test", [account.address])
    return Message.objects.get(pk=report.message_ids[0])


def folder(account: Account, role: Role) -> Mailbox:
    return Mailbox.objects.get(account=account, role=role)


class WebServer:
    """The real ASGI application under uvicorn in a background thread, on an ephemeral port.

    Server-sent events need ASGI (an async view streaming from the change hub), which Django's threaded live
    server (WSGI) cannot serve.
    """

    def __init__(self) -> None:
        import socket
        import threading

        import uvicorn

        from mailsite.asgi import application

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(application, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        import time

        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
        # Event streams cut off by the shutdown leave their requests (with the request body's temporary file) and
        # database connections in reference cycles. Collect them now: left to the garbage collector, their
        # ResourceWarnings surface in whichever later test it happens to run in, and fail that test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium():
    """(playwright, browser): Debian's Chromium driven by Playwright (browser downloads are impossible here)."""
    import os

    import pytest
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-test-deps.sh as root")
    playwright = sync_playwright().start()
    return playwright, playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def close_context(page) -> None:
    """Leave the webmail first, so its live-update stream has ended before the page's context is torn down (a
    context closed with the stream open once hung the teardown until pytest's timeout)."""
    from playwright.sync_api import Error as PlaywrightError

    for _ in range(3):
        try:
            page.goto("about:blank")
            break
        except PlaywrightError:  # a navigation of the page's own (to the sign-in page) got in first
            continue
    page.context.close()
    wait_for_requests_to_finish()


def wait_for_requests_to_finish(timeout: float = 2.0) -> None:
    """Wait until no connection to the test database is inside a transaction: a request the closed page left
    running in the web server would otherwise meet the test's emptying of the tables (TRUNCATE takes its tables
    one by one) and one of the two would end in a deadlock. The check uses a connection of its own, since a
    module's page is closed where the test's database access has already ended."""
    import psycopg
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    settings = connection.settings_dict
    deadline = time.monotonic() + timeout
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    ) as watcher:
        while time.monotonic() < deadline:
            busy = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            ).fetchone()
            if busy is None or busy[0] == 0:
                return
            time.sleep(0.02)


def sign_in(page, base_url: str, address: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=address]", address)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#list")


# --- Fixtures of the browser test modules, imported by each (`from tests.webmail_support import page_fixture`) ---


@pytest.fixture(scope="module", name="browser")
def browser_fixture():
    playwright, chromium = launch_chromium()
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(name="alice")
def alice_fixture(make_account, transactional_db) -> Account:
    """Alice, with "undo send" off: Send sends at once (the undo-send test turns it on)."""
    from webmail.models import Preferences

    alice = make_account("alice@example.com", display_name="Alice Example")
    Preferences.objects.create(account=alice, undo_send_seconds=0)
    return alice


@pytest.fixture(name="page")
def page_fixture(browser, transactional_db):
    # transactional_db: set up before the page and torn down after it, so the page closes while its signed-in
    # user still exists (once the database is emptied, its next live update finds no session and goes to sign in).
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(5000)
    yield page
    close_context(page)


VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


@pytest.fixture(name="sized_page", params=sorted(VIEWPORTS))
def sized_page_fixture(request, browser, transactional_db):
    """A page at desktop width, and again at phone width."""
    context = browser.new_context(**VIEWPORTS[request.param])
    page = context.new_page()
    page.set_default_timeout(5000)
    yield page
    close_context(page)


def type_in_message(page, text: str, *, at: str = "End") -> None:
    """Type into the message editor as a user does: click in it, go to its end (or "Home"), type."""
    page.click("#editor")
    page.keyboard.press(f"Control+{at}")
    page.keyboard.type(text)


def assert_full_page(page) -> None:
    """The page the user landed on is the whole styled application (top bar, stylesheet applied), not a bare
    fragment of it."""
    from playwright.sync_api import expect

    expect(page.locator("header.topbar")).to_be_visible()
    assert "fragment=" not in page.url, page.url
    assert page.evaluate("document.styleSheets.length") >= 1
    # The stylesheet really applies: the top bar is a flex row.
    assert page.evaluate("getComputedStyle(document.querySelector('header.topbar')).display") == "flex"


def allow_database_connections(allowed: bool) -> None:
    """Open or close the test database to every client (the web server's threads included), from the
    maintenance database; closing also cuts every open connection but this one's."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    name = connection.settings_dict["NAME"]
    admin = {key: params[key] for key in ("host", "port", "user", "password") if params.get(key)}
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
    if allowed:
        connection.close()  # this test's own connection was cut too; reconnect on next use
