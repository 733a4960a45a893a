"""Celery tasks of the webmail: sending scheduled messages ("send later"). They only execute: the
`ScheduledSend` rows decide what is due (`webmail.scheduling`)."""

from __future__ import annotations

from mailsite.celery import app
from webmail import scheduling


@app.task(name=scheduling.SEND_TASK, ignore_result=True)
def send_scheduled(entry_id: int) -> None:
    """Send one scheduled message at its time (a no-op if it was cancelled, sent or is not due)."""
    scheduling.send_one(entry_id)


@app.task(name="webmail.send_due", ignore_result=True)
def send_due() -> int:
    """The periodic run: send every scheduled message that is due, whether or not its wake-up task arrived."""
    return scheduling.send_due()
