"""Settings → Import mail in a real browser, on PostgreSQL with live updates on: the import runs in a real Celery
worker from a second Mailsite IMAP listener, its progress shows on the open page while it runs, and the page
turns into the report when it ends; run again, it finds everything imported and adds nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.db import connection, transaction
from playwright.sync_api import expect

from mailboxes.models import Account, Message
from tests.conftest import PASSWORD
from tests.relay_support import RELAY_QUEUE, CeleryWorker, wait_for
from tests.transfer_support import contents, fill
from tests.webmail_support import (  # noqa: F401 (the *_fixture names are fixtures)
    BROWSER_MARKS,
    alice_fixture,
    assert_full_page,
    browser_fixture,
    sign_in,
    sized_page_fixture,
)
from transfer.models import ImportJob

pytestmark = BROWSER_MARKS
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SOURCE = "src@source.test"
MESSAGES = 40  # in 10 folders; one of them (400 kB) is over the worker's size limit and is skipped
LIMIT = 300 * 1024


@pytest.fixture
def worker(transactional_db, settings, tmp_path) -> Iterator[CeleryWorker]:
    if connection.vendor != "postgresql":
        pytest.fail("these tests need PostgreSQL (live updates): set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    settings.MAILSITE_RELAY_QUEUE = RELAY_QUEUE
    # The second listener is on loopback, which the import refuses unless told otherwise (and so it is told).
    settings.MAILSITE_IMPORT_PRIVATE_HOSTS = True
    env = {"MAILSITE_IMPORT_PRIVATE_HOSTS": "true", "MAILSITE_MAX_MESSAGE_SIZE": str(LIMIT)}
    celery = CeleryWorker(tmp_path / "worker", env)
    celery.start()
    yield celery
    celery.stop()


def start_import(page, port: int) -> None:
    page.fill("#id_host", "127.0.0.1")
    page.fill("#id_port", str(port))
    page.select_option("#id_security", "plain")
    page.fill("#id_user", SOURCE)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Start the import").click()


def test_import_runs_in_the_background_with_live_progress(
    web_server, sized_page, alice, listeners, make_account, worker
) -> None:
    page = sized_page
    source = make_account(SOURCE)
    fill(source, MESSAGES)
    port = listeners("imapd")["imap"].port
    sign_in(page, web_server.url, alice.address, PASSWORD)
    page.goto(f"{web_server.url}/settings/")
    page.get_by_role("link", name="Import your mail from another server (IMAP)").click()
    assert_full_page(page)
    expect(page.locator("#import-progress")).to_be_hidden()

    # Hold alice's account row: the worker counts the remote messages, then waits at its first store write, so
    # the page shows a run in progress, and the password waits in the job row, encrypted.
    with transaction.atomic():
        Account.objects.select_for_update(no_key=True).get(pk=alice.pk)
        start_import(page, port)
        expect(page.locator(".notice")).to_contain_text("The import from 127.0.0.1 has started.")
        assert_full_page(page)
        expect(page.locator("#import-form")).to_be_hidden()
        progress = page.locator("#import-progress")
        expect(progress.locator("[data-field=state]")).to_have_text("Importing", timeout=30000)
        expect(progress.locator("[data-field=folders]")).to_have_text("0 of 10 folders")
        # The first folder listed (Archive) holds the message over the limit: its skip shows while the run waits.
        expect(progress.locator("[data-field=messages]")).to_have_text(f"1 of {MESSAGES} messages")
        expect(progress.locator("[data-field=summary]")).to_have_text("0 imported, 0 there already, 1 skipped")
        expect(progress.locator(".import-skipped")).to_contain_text(f"Archive UID 3: larger than {LIMIT} bytes")
        [job] = ImportJob.objects.all()
        assert job.secret
        assert PASSWORD not in job.secret

    # Released: the same page follows the run to its end and shows the report, without a reload of ours.
    expect(progress.locator("[data-field=state]")).to_have_text("Done", timeout=60000)
    assert_full_page(page)
    expect(progress.locator("[data-field=summary]")).to_have_text(
        f"{MESSAGES - 1} imported, 0 there already, 1 skipped"
    )
    expect(progress.locator(".import-skipped")).to_contain_text(f"larger than {LIMIT} bytes")
    expect(progress.locator(".import-counts")).to_contain_text("Work/Projects")
    expect(page.locator("#import-form")).to_be_visible()
    expect(page.locator("#id_host")).to_have_value("127.0.0.1")
    expect(page.locator("#id_password")).to_have_value("")

    source_mail = contents(source, whole_seconds=True)
    big = [name for name, rows in source_mail.items() for raw, *_ in rows if len(raw) > LIMIT]
    assert len(big) == 1
    imported = contents(alice, whole_seconds=True)
    assert sum(map(len, imported.values())) == MESSAGES - 1
    for name, rows in source_mail.items():
        assert sorted(imported.get(name, [])) == sorted(row for row in rows if len(row[0]) <= LIMIT), name
    job.refresh_from_db()
    assert (job.state, job.secret, job.imported) == (ImportJob.State.DONE, "", MESSAGES - 1)
    assert PASSWORD not in worker.log()

    # Again: everything is found imported before, nothing is added.
    start_import(page, port)
    expect(progress.locator("[data-field=summary]")).to_have_text(
        f"0 imported, {MESSAGES - 1} there already, 1 skipped", timeout=60000
    )
    expect(progress.locator("[data-field=state]")).to_have_text("Done")
    assert Message.objects.filter(account=alice).count() == MESSAGES - 1
    wait_for(lambda: not ImportJob.objects.exclude(secret="").exists())
