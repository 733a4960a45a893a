"""Periodic housekeeping of the store (Celery beat, also in `runmail`'s worker)."""

from __future__ import annotations

from celery import shared_task

from mailboxes.actions import recycling
from sieve.housekeeping import prune_vacation_log


@shared_task(name="mailboxes.purge_recycled", ignore_result=True)
def purge_recycled() -> int:
    """Drop recycled messages past the retention, a batch per action, until none is left; returns how many.
    Then, the same way, the Sieve vacation log's entries whose period is over."""
    total = 0
    while purged := recycling.purge_recycled():
        total += purged
    while prune_vacation_log():
        pass
    return total
