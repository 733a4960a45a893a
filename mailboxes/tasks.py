"""Periodic housekeeping of the store (Celery beat, also in `runmail`'s worker)."""

from __future__ import annotations

from mailboxes.actions import expunge_log, recycling, text_index
from mailsite.celery import app
from sieve.housekeeping import prune_vacation_log


@app.task(name="mailboxes.purge_recycled", ignore_result=True)
def purge_recycled() -> int:
    """Drop recycled messages past the retention, a batch per action, until none is left; returns how many.
    Then, the same way, the Sieve vacation log's entries whose period is over."""
    total = 0
    while purged := recycling.purge_recycled():
        total += purged
    while prune_vacation_log():
        pass
    return total


@app.task(name="mailboxes.prune_expunge_log", ignore_result=True)
def prune_expunge_log() -> int:
    """Forget expunges older than MAILSITE_IMAP_EXPUNGE_KEEP, a batch per action, until none is left; returns how
    many."""
    total = 0
    while pruned := expunge_log.prune_expunge_log():
        total += pruned
    return total


@app.task(name="mailboxes.index_text", ignore_result=True)
def index_text() -> int:
    """Give the messages stored since the last run their webmail search document and their IMAP TEXT/BODY index
    rows, a batch per action, until none is left; returns how many messages got index rows."""
    while text_index.index_search_documents():
        pass
    total = 0
    while indexed := text_index.index_text():
        total += indexed
    return total
