"""The webmail's background IMAP import jobs (transfer/jobs.py): the password kept only encrypted and only while
a run may need it, one run per account, servers on private addresses refused, and the page and its status."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD
from transfer import jobs
from transfer.models import ImportJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_account):
    return make_account("alice@example.com")


@pytest.fixture
def private_ok(settings):
    settings.MAILSITE_IMPORT_PRIVATE_HOSTS = True


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "::1"])
def test_servers_on_private_addresses_are_refused(alice, host):
    with pytest.raises(jobs.JobError, match="private or local address"):
        jobs.start(alice, host, 993, "tls", "me", "secret")
    assert not ImportJob.objects.exists()


def test_an_unknown_host_is_a_clear_error(alice):
    with pytest.raises(jobs.JobError, match="cannot be found"):
        jobs.start(alice, "no-such-host.invalid", 993, "tls", "me", "secret")


def test_the_password_is_stored_encrypted_and_one_run_at_a_time(alice, private_ok, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        job = jobs.start(alice, "127.0.0.1", 993, "tls", "me", "Tr0ub4dor&3")
    assert len(queued) == 1  # the task is sent once the row is committed
    assert job.secret
    assert "Tr0ub4dor" not in job.secret
    with pytest.raises(jobs.JobError, match="already running"):
        jobs.start(alice, "127.0.0.1", 993, "tls", "me", "x")


def test_a_run_whose_worker_died_is_taken_over_or_ended(alice, private_ok, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job = jobs.start(alice, "127.0.0.1", 993, "tls", "me", "secret")
    assert jobs.claim(job.pk) is not None
    assert jobs.claim(job.pk) is None  # running, and reporting: not another worker's to take
    assert jobs.is_running_elsewhere(job.pk)
    ImportJob.objects.filter(pk=job.pk).update(updated=timezone.now() - jobs.STALE - datetime.timedelta(seconds=1))
    assert jobs.claim(job.pk) is not None  # silent for too long: its worker died, the task's redelivery goes on
    ImportJob.objects.filter(pk=job.pk).update(updated=timezone.now() - jobs.STALE - datetime.timedelta(seconds=1))
    with django_capture_on_commit_callbacks():
        again = jobs.start(alice, "127.0.0.1", 993, "tls", "me", "secret")  # a new start ends the silent one
    job.refresh_from_db()
    assert (job.state, job.secret) == (ImportJob.State.FAILED, "")
    assert "interrupted" in job.error
    assert again.state == ImportJob.State.QUEUED


def test_a_run_that_fails_forgets_the_password_and_says_why(
    alice, settings, private_ok, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        job = jobs.start(alice, "127.0.0.1", 993, "tls", "me", "secret")
    settings.MAILSITE_IMPORT_PRIVATE_HOSTS = False  # the worker looks again before it connects
    claimed = jobs.claim(job.pk)
    assert claimed is not None
    jobs.run(claimed)
    job.refresh_from_db()
    assert (job.state, job.secret) == (ImportJob.State.FAILED, "")
    assert "private or local address" in job.error
    assert job.finished is not None
    assert jobs.claim(job.pk) is None  # an ended run is never run again


def test_the_page_and_its_status(client, alice, private_ok, django_capture_on_commit_callbacks):
    client.force_login(alice)
    page = client.get("/settings/import/")
    assert page.status_code == 200
    assert b'id="import-form"' in page.content
    assert client.get("/settings/import/status/").json() == {"state": None}
    form = {"host": "127.0.0.1", "port": "", "security": "starttls", "user": "me", "password": PASSWORD}
    with django_capture_on_commit_callbacks():
        started = client.post("/settings/import/", form)
    assert started.status_code == 302
    job = ImportJob.objects.get()
    assert (job.host, job.port, job.mode) == ("127.0.0.1", 143, "starttls")
    status = client.get("/settings/import/status/").json()
    assert (status["state"], status["active"], status["server"]) == ("queued", True, "me at 127.0.0.1:143")
    busy = client.post("/settings/import/", form)
    assert b"An import is already running" in busy.content
    assert PASSWORD.encode() not in busy.content
    bad = client.post("/settings/import/", {**form, "host": "a b/c"})
    assert b"Enter a server name" in bad.content
