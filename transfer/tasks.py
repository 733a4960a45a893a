"""The webmail's IMAP import, run by a Celery worker (`transfer.jobs`)."""

from __future__ import annotations

from celery import Task

from mailsite.celery import app
from transfer import jobs


@app.task(name="transfer.import_imap", bind=True, max_retries=None)
def import_imap(self: Task, job_id: int) -> None:
    """Run the import job; its message holds only the job's id. A job still running under another worker
    (this message handed on after a broker timeout) is looked at again once that worker would count as dead."""
    job = jobs.claim(job_id)
    if job is not None:
        jobs.run(job)
    elif jobs.is_running_elsewhere(job_id):
        raise self.retry(countdown=jobs.STALE.total_seconds())
