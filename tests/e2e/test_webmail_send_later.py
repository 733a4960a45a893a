"""Send later, as a user does it in a real browser, sent by a real Celery worker at the time chosen in the user's
time zone; and the waiting message outliving a worker that was down and a broker that lost its task."""

from __future__ import annotations

import datetime
import os
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.relay_support import RELAY_QUEUE, CeleryWorker, wait_for
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
from webmail.models import Preferences, ScheduledSend

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ZONE = "Asia/Tokyo"  # not the browser's zone (UTC here): the time typed is read in the user's own


@pytest.fixture(autouse=True)
def _postgresql(transactional_db) -> None:
    if connection.vendor != "postgresql":
        pytest.fail("these tests need PostgreSQL (live updates): set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def users(alice, make_account):
    Preferences.objects.filter(account=alice).update(time_zone=ZONE)
    return alice, make_account("bob@example.com")


@pytest.fixture
def worker_dir(tmp_path: Path, settings) -> Path:
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE  # the web server's wake-up tasks go where the worker listens
    return tmp_path / "worker"


@pytest.fixture
def worker(worker_dir: Path) -> Iterator[CeleryWorker]:
    """A Celery worker (with beat) whose periodic send runs rarely: what it sends on time, its wake-up task sent."""
    running = CeleryWorker(worker_dir, {"MAILSITE_SEND_LATER_INTERVAL": "1h"})
    running.start()
    yield running
    running.stop()


def _typed(when: datetime.datetime) -> str:
    """What the user types in the date and time field: the time in their zone."""
    return when.astimezone(zoneinfo.ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S")


def _write_and_schedule(page, base_url: str, subject: str, when: datetime.datetime) -> None:
    page.click("#compose-link")
    page.fill("#id_to", "bob@example.com")
    page.fill("#id_subject", subject)
    type_in_message(page, "Lunch is at noon.")
    page.click(".send-later summary")
    expect(page.locator(".send-later .zone")).to_have_text(f"({ZONE})")
    page.fill("#id_send_at", _typed(when))
    page.click("button[value=schedule]")
    expect(page).to_have_url(f"{base_url}/scheduled/")


def test_a_message_sent_later_waits_and_goes_at_its_time(web_server, sized_page, users, worker) -> None:
    page = sized_page
    alice, bob = users
    sign_in(page, web_server.url, alice.address, PASSWORD)
    when = (timezone.now() + datetime.timedelta(seconds=10)).replace(microsecond=0)
    _write_and_schedule(page, web_server.url, "Lunch", when)
    assert_full_page(page)
    row = page.locator(".scheduled-list tr", has_text="Lunch")
    expect(row.locator(".when")).to_contain_text(_typed(when)[11:])  # the time as the user typed it
    expect(page.locator(".notice")).to_contain_text("The message will be sent on")
    assert Message.objects.filter(mailbox=folder(alice, Role.DRAFTS), subject="Lunch").exists()

    received = wait_for(lambda: Message.objects.filter(account=bob, subject="Lunch").first(), timeout=40)
    assert isinstance(received, Message)
    assert received.internal_date >= when, (received.internal_date, when)  # not a moment early
    assert "Lunch is at noon." in bytes(received.body.raw).decode()
    assert Message.objects.filter(mailbox=folder(alice, Role.SENT), subject="Lunch").exists()
    assert not Message.objects.filter(mailbox=folder(alice, Role.DRAFTS)).exists()
    page.reload()
    assert_full_page(page)
    expect(page.locator(".scheduled-list .empty")).to_contain_text("Nothing scheduled")


def test_a_scheduled_message_can_be_changed_and_cancelled(web_server, sized_page, users) -> None:
    page = sized_page
    alice, _ = users
    sign_in(page, web_server.url, alice.address, PASSWORD)
    _write_and_schedule(page, web_server.url, "Agenda", timezone.now() + datetime.timedelta(days=1))
    page.click("a.brand")
    page.click("#folders .scheduled-link")  # with the folders, at desktop and phone width
    expect(page).to_have_url(f"{web_server.url}/scheduled/")

    page.locator(".scheduled-list tr", has_text="Agenda").get_by_role("button", name="Edit").click()
    assert_full_page(page)
    expect(page.locator("#id_subject")).to_have_value("Agenda")
    expect(page.locator("#editor")).to_contain_text("Lunch is at noon.")
    assert not ScheduledSend.objects.exists()  # changing it first cancels the send
    page.fill("#id_subject", "Agenda, moved")
    later = (timezone.now() + datetime.timedelta(days=2)).replace(microsecond=0)
    page.click(".send-later summary")
    page.fill("#id_send_at", _typed(later))
    page.click("button[value=schedule]")
    expect(page).to_have_url(f"{web_server.url}/scheduled/")
    assert_full_page(page)
    row = page.locator(".scheduled-list tr", has_text="Agenda, moved")
    expect(row.locator(".when")).to_contain_text(_typed(later)[11:])
    [entry] = ScheduledSend.objects.all()
    assert entry.send_at == later
    assert Message.objects.filter(mailbox=folder(alice, Role.DRAFTS)).count() == 1

    row.get_by_role("button", name="Cancel send").click()
    assert_full_page(page)
    expect(page.locator(".notice")).to_contain_text("the message is in Drafts")
    expect(page.locator(".scheduled-list .empty")).to_be_visible()
    page.goto(f"{web_server.url}/f/{folder(alice, Role.DRAFTS).pk}/")
    assert_full_page(page)
    expect(page.locator("#list .row", has_text="Agenda, moved")).to_be_visible()


def test_a_past_time_is_refused_on_the_page(web_server, sized_page, users) -> None:
    page = sized_page
    alice, _ = users
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.click("#compose-link")
    page.fill("#id_to", "bob@example.com")
    page.fill("#id_subject", "Too late")
    page.click(".send-later summary")
    page.fill("#id_send_at", _typed(timezone.now() - datetime.timedelta(hours=1)))
    page.click("button[value=schedule]")
    expect(page.locator(".compose-alert")).to_contain_text("Send at: Choose a time in the future.")
    assert_full_page(page)
    assert not ScheduledSend.objects.exists()


def _lose_the_broker_tasks() -> None:
    """Empty the worker's queue on the broker, as a flushed or replaced Redis would."""
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    try:
        keys = [key for key in broker.scan_iter(match=f"{RELAY_QUEUE}*")]
        if keys:
            broker.delete(*keys)
    finally:
        broker.close()


@pytest.mark.slow
def test_a_scheduled_message_outlives_a_stopped_worker_and_a_lost_broker_task(users, worker_dir) -> None:
    """No worker runs when the message is scheduled, and its wake-up task is lost: the database row is the queue
    of record, and the worker's periodic run sends it once it is back."""
    alice, bob = users
    client = Client()
    assert client.login(username=alice.address, password=PASSWORD)
    when = timezone.now() + datetime.timedelta(seconds=2)
    response = client.post(
        reverse("webmail:compose"),
        {"to": "bob@example.com", "subject": "Restart", "body": "Still here.", "action": "schedule"}
        | {"send_at": _typed(when)},
    )
    assert response.status_code == 302, response.content
    _lose_the_broker_tasks()
    wait_for(lambda: timezone.now() > when + datetime.timedelta(seconds=1), timeout=10)
    assert not Message.objects.filter(account=bob).exists()
    worker = CeleryWorker(worker_dir, {"MAILSITE_SEND_LATER_INTERVAL": "1s"})
    worker.start()
    try:
        wait_for(lambda: Message.objects.filter(account=bob, subject="Restart").exists(), timeout=40)
    finally:
        worker.stop()
    assert Message.objects.filter(account=bob).count() == 1
    assert not ScheduledSend.objects.exists()
