"""Per-domain counts of what the MX did (delivered, junked, refused), for the admin.

Counting in the database per message would add a write to every delivery; each listener process counts in
memory instead and adds its counts to the day's rows at most every FLUSH_INTERVAL seconds, in one statement.
Counts of the last interval are lost if the process is killed: they are statistics, not mail.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from mailauth.models import MxTally
from mailboxes import asyncdb

log = logging.getLogger("mailauth.tally")

FLUSH_INTERVAL = 10.0
OUTCOMES = ("delivered", "junked", "refused")

_TABLE = MxTally._meta.db_table
_UPSERT = (
    f"INSERT INTO {_TABLE} (domain, day, delivered, junked, refused) VALUES (%s, %s, %s, %s, %s) "
    f"ON CONFLICT (domain, day) DO UPDATE SET delivered = {_TABLE}.delivered + excluded.delivered, "
    f"junked = {_TABLE}.junked + excluded.junked, refused = {_TABLE}.refused + excluded.refused"
)


def add(counts: dict[tuple[str, str], int], day: datetime.date) -> None:
    """Add counts by (domain, outcome) to the day's rows (domains in ascending order: no deadlocks)."""
    domains = sorted({domain for domain, _ in counts})
    rows: list[Sequence[Any]] = [(d, day, *(counts.get((d, outcome), 0) for outcome in OUTCOMES)) for d in domains]
    with connection.cursor() as cursor:
        cursor.executemany(_UPSERT, rows)


class Tally:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._flushing = False

    def count(self, recipients: Iterable[str], outcome: str) -> None:
        for domain in {r.rpartition("@")[2].lower() for r in recipients}:
            self._counts[(domain, outcome)] += 1
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL, lambda: asyncio.ensure_future(self.flush()))

    async def flush(self) -> None:
        counts, self._counts = dict(self._counts), Counter()
        self._flushing = False
        if not counts:
            return
        try:
            await asyncdb.call(add, counts, datetime.datetime.now(datetime.UTC).date())
        except Exception:
            log.exception("MX tallies could not be stored; %d counts dropped", sum(counts.values()))


def outcome(reply: str, junk: bool) -> str | None:
    """The tally a DATA reply counts in; temporary failures count in none (the mail comes back)."""
    if reply.startswith("2"):
        return "junked" if junk else "delivered"
    if reply.startswith("5"):
        return "refused"
    return None
