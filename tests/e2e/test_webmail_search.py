"""Search operators in a real browser, typed into the search box as a user does."""

from __future__ import annotations

import datetime
import os

import pytest
from django.db import connection
from playwright.sync_api import expect

from mailboxes import actions
from mailboxes.models import Role
from tests.conftest import PASSWORD
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    deliver,
    folder,
    make_raw,
    page_fixture,
    sign_in,
    sized_page_fixture,
)

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def mail(alice):
    """A small mailbox: senders, recipients, an attachment, a starred and an old message, one in Archive."""
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    deliver(alice, subject="Invoice March", sender="Billing <billing@shop.test>", text="amount due")
    deliver(alice, subject="Photos", sender="Ann Lee <ann@friends.test>", attachments=[("a.jpg", "image/jpeg", b"x")])
    starred = deliver(alice, subject="Budget plan", sender="Ann Lee <ann@friends.test>", text="numbers inside")
    actions.set_flags(alice, starred.mailbox_id, [starred.uid], ["\\Flagged", "\\Seen"], actions.FlagMode.ADD)
    old = make_raw(to="team@example.com", sender="Ann Lee <ann@friends.test>", subject="Old budget", text="numbers")
    actions.append(
        alice,
        folder(alice, Role.ARCHIVE).pk,
        old,
        flags=["\\Seen"],
        internal_date=datetime.datetime(2020, 5, 17, 12, tzinfo=datetime.UTC),
    )
    return alice


def _search(page, query: str) -> list[str]:
    page.fill("#search", query)
    page.press("#search", "Enter")
    page.wait_for_load_state()
    expect(page.locator("#list h1")).to_contain_text(query)
    assert_full_page(page)
    return sorted(page.locator("#list .row .subject").all_inner_texts())


def test_search_operators(web_server, page, mail) -> None:
    sign_in(page, web_server.url, mail.address, PASSWORD)
    page.select_option(".search select[name=in]", "all")
    assert _search(page, "from:ann") == ["Budget plan", "Old budget", "Photos"]
    assert _search(page, "from:ann budget") == ["Budget plan", "Old budget"]
    assert _search(page, 'subject:"invoice march"') == ["Invoice March"]
    assert _search(page, "to:team@example.com") == ["Old budget"]
    assert _search(page, "has:attachment") == ["Photos"]
    assert _search(page, "filename:a.jpg") == ["Photos"]
    assert _search(page, "filename:jpeg") == ["Photos"]  # the type counts too
    assert _search(page, "filename:b.png") == []
    assert _search(page, "is:starred") == ["Budget plan"]
    assert _search(page, "is:unread from:ann") == ["Photos"]
    assert _search(page, "before:2021-01-01") == ["Old budget"]
    assert _search(page, "after:2021-01-01 budget") == ["Budget plan"]
    assert _search(page, "in:archive") == ["Old budget"]
    assert _search(page, "in:nowhere") == []
    _search(page, "before:yesterday")
    expect(page.locator(".search-problems")).to_contain_text("before:yesterday is not understood")


def test_accent_insensitive_search_follows_new_mail(web_server, sized_page, alice) -> None:
    """ "cafe" finds "Café" and "café" finds "cafe"; a matching message that arrives while the results are open
    joins them with the live refresh."""
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    page = sized_page
    deliver(alice, subject="Réunion au Café", text="Rendez-vous à la crème brûlée.")
    deliver(alice, subject="Cafe menu", text="Soup of the day.")
    deliver(alice, subject="Lunch", text="Somewhere else.")
    sign_in(page, web_server.url, alice.address, PASSWORD)
    assert _search(page, "café") == ["Cafe menu", "Réunion au Café"]
    assert _search(page, "creme brulee") == ["Réunion au Café"]
    assert _search(page, "cafe") == ["Cafe menu", "Réunion au Café"]
    deliver(alice, subject="CAFÉ NOIR", text="Ce soir.")
    expect(page.locator("#list .row", has_text="CAFÉ NOIR")).to_be_visible()
    assert_full_page(page)
    expect(page.locator("#list .row", has_text="Lunch")).to_have_count(0)


def test_cjk_words_are_found_inside_sentences(web_server, sized_page, alice) -> None:
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    page = sized_page
    deliver(alice, subject="会議のお知らせ", text="明日の会議は東京都の本社で行います。")
    deliver(alice, subject="天气", text="今天北京的天气很好，我们去公园散步吧。")  # noqa: RUF001 (Chinese comma)
    sign_in(page, web_server.url, alice.address, PASSWORD)
    assert _search(page, "東京") == ["会議のお知らせ"]
    assert _search(page, "天气很好") == ["天气"]
    assert _search(page, "园") == ["天气"]
    assert _search(page, "天气很坏") == []
    expect(page.locator("#list")).to_contain_text("No messages match")
    deliver(alice, subject="出張", text="来週は北京と東京に出張します。")
    assert _search(page, "東京") == ["会議のお知らせ", "出張"]
    page.locator("#list .row", has_text="出張").click()
    expect(page.locator("body")).to_contain_text("来週は北京と東京に出張します。")
    assert_full_page(page)
