"""Housekeeping of Sieve's tables, run by the store's hourly task (`mailboxes.purge_recycled`)."""

from __future__ import annotations

import datetime

from django.utils import timezone

from mailboxes.actions.locks import action
from sieve.models import VacationReply


@action
def prune_vacation_log(*, now: datetime.datetime | None = None, batch: int = 1000) -> int:
    """Forget vacation replies whose period is over (RFC 5230 4.1): the sender would be answered again anyway
    (delivery's upsert overwrites such a row), so the row only takes room. A batch per call; returns how many
    went. The condition is checked again by the DELETE, so a reply recorded meanwhile is kept."""
    now = now or timezone.now()
    ended = VacationReply.objects.filter(quiet_until__lte=now)
    ids = list(ended.values_list("pk", flat=True)[:batch])
    if not ids:
        return 0
    deleted, _ = ended.filter(pk__in=ids).delete()
    return deleted
