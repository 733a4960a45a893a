"""Periodic housekeeping of the store (Celery beat, also in `runmail`'s worker)."""

from __future__ import annotations

from celery import shared_task

from mailboxes.actions import recycling


@shared_task(name="mailboxes.purge_recycled", ignore_result=True)
def purge_recycled() -> int:
    """Drop recycled messages past the retention, a batch per action, until none is left; returns how many."""
    total = 0
    while purged := recycling.purge_recycled():
        total += purged
    return total
