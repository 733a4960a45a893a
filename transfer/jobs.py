"""The webmail's background IMAP imports: one `ImportJob` row per run, its progress, and its password.

The password reaches the worker through the job row, encrypted (Fernet) with a key derived from the site secret,
and is deleted when the run ends, whatever the outcome; the task's message carries only the job's id. So a
worker that dies mid-run (the task is acknowledged late and handed to another worker) can go on, while nothing
readable is ever written to the database, the broker or a log. A run is the command's importer
(`transfer.imap_import`), so a job run again after a failure fetches only what is missing.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import logging
import socket
import time
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from mailboxes.models import Account
from transfer.imap_import import Importer, Progress, Report
from transfer.imap_source import Endpoint, SourceError
from transfer.models import ImportJob

log = logging.getLogger("mail.transfer")

# A running job that has not reported progress for this long lost its worker: another may take it over.
STALE = datetime.timedelta(minutes=5)
SAVE_EVERY = 0.5  # seconds between progress writes
SKIPPED_KEPT = 1000  # skipped items listed in the job (the count is always whole)
ACTIVE = (ImportJob.State.QUEUED, ImportJob.State.RUNNING)
AGAIN = "start the import again to go on where it stopped"
INTERRUPTED = f"The import was interrupted; {AGAIN}."
INTERNAL = f"The import stopped on an internal error; {AGAIN}."


class JobError(Exception):
    """Why an import cannot start: the text for the user."""


@cache
def _fernet() -> Fernet:
    digest = hashlib.sha256(b"mailsite.transfer.import-password\0" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def check_host(host: str, port: int) -> None:
    """Refuse a server on a loopback, private or link-local address unless MAILSITE_IMPORT_PRIVATE_HOSTS: a
    user must not reach into the network the mail system runs in (SSRF)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        raise JobError(f"{host} cannot be found") from None
    if settings.MAILSITE_IMPORT_PRIVATE_HOSTS:
        return
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if not ip.is_global:
            raise JobError(f"{host} is on a private or local address ({ip}); this server imports from public ones")


def latest(account: Account) -> ImportJob | None:
    return ImportJob.objects.filter(account=account).order_by("-created").first()


def start(account: Account, host: str, port: int, mode: str, user: str, password: str) -> ImportJob:
    """Record an import and queue its run once the row is committed. One at a time per account (a partial
    unique index): a run that stopped reporting lost its worker, and ends here, its password with it."""
    from transfer.tasks import import_imap  # the task module imports this one

    check_host(host, port)
    now = timezone.now()
    with transaction.atomic():
        ImportJob.objects.filter(account=account, state=ImportJob.State.RUNNING, updated__lte=now - STALE).update(
            state=ImportJob.State.FAILED, error=INTERRUPTED, secret="", finished=now
        )
        busy = JobError("An import is already running; wait for it to finish.")
        if ImportJob.objects.filter(account=account, state__in=ACTIVE).exists():
            raise busy
        secret = _fernet().encrypt(password.encode()).decode("ascii")
        try:
            with transaction.atomic():
                job = ImportJob.objects.create(
                    account=account, host=host, port=port, mode=mode, user=user, secret=secret
                )
        except IntegrityError:  # started at the same moment in another request
            raise busy from None
        transaction.on_commit(lambda: import_imap.apply_async((job.pk,), queue=settings.MAILSITE_RELAY_QUEUE))
    return job


def claim(job_id: int) -> ImportJob | None:
    """Take a queued job, or a running one whose worker stopped reporting (it died); None if it is not ours to
    run (ended, or running elsewhere)."""
    now = timezone.now()
    stale = Q(state=ImportJob.State.RUNNING, updated__lte=now - STALE)
    taken = (
        ImportJob.objects.filter(Q(pk=job_id) & (Q(state=ImportJob.State.QUEUED) | stale))
        .exclude(secret="")
        .update(state=ImportJob.State.RUNNING, updated=now)
    )
    return ImportJob.objects.select_related("account").get(pk=job_id) if taken else None


def is_running_elsewhere(job_id: int) -> bool:
    return ImportJob.objects.filter(pk=job_id, state=ImportJob.State.RUNNING).exclude(secret="").exists()


def _fields(done: Progress, report: Report) -> dict:
    return {
        "folders_total": done.folders_total,
        "folders_done": done.folders_done,
        "folder": done.folder,
        "messages_total": done.messages_total,
        "messages_done": done.messages_done,
        "imported": report.total,
        "counts": dict(report.folders),
        "already": report.already,
        "skipped": [[item.where, item.reason] for item in report.skipped[:SKIPPED_KEPT]],
        "updated": timezone.now(),
    }


def run(job: ImportJob) -> None:
    """Run a claimed job to its end; the password is deleted then, whatever the outcome."""
    importer: Importer | None = None
    last: tuple[float, str, int] = (0.0, "", 0)  # the last write: when, the folder, the skipped count

    def progress(done: Progress) -> None:
        # A new folder or a new skip is shown at once; other progress once every SAVE_EVERY seconds at most.
        nonlocal last
        if importer is None:
            return
        now, skipped = time.monotonic(), len(importer.report.skipped)
        if (done.folder, skipped) != last[1:] or now - last[0] >= SAVE_EVERY:
            ImportJob.objects.filter(pk=job.pk).update(**_fields(done, importer.report))
            last = (now, done.folder, skipped)

    state, error = ImportJob.State.FAILED, ""
    try:
        check_host(job.host, job.port)
        password = _fernet().decrypt(job.secret.encode("ascii")).decode()
        endpoint = Endpoint(job.host, job.port, job.user, password, job.mode)
        importer = Importer(job.account, endpoint, max_size=settings.MAILSITE_MAX_MESSAGE_SIZE, progress=progress)
        importer.run()
        state = ImportJob.State.DONE
    except (JobError, SourceError) as exc:
        error = str(exc)
    except InvalidToken:
        error = "The password could not be read back (the site's secret changed); start the import again."
    except Exception:
        log.exception("import job %s of %s failed", job.pk, job.account.address)
        error = INTERNAL
    finally:
        done = _fields(importer.done, importer.report) if importer is not None else {}
        ImportJob.objects.filter(pk=job.pk).update(**done, state=state, error=error, secret="", finished=timezone.now())
    report = importer.report if importer is not None else Report()
    log.info(
        "import job %s of %s %s: imported=%d already=%d skipped=%d",
        job.pk,
        job.account.address,
        state,
        report.total,
        report.already,
        len(report.skipped),
    )
