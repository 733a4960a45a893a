"""Pruning the expunge log (`ExpungedMessage`), which QRESYNC reads to tell a client the UIDs that vanished.

Like Dovecot's transaction log, the log is kept for a while (MAILSITE_IMAP_EXPUNGE_KEEP) and then forgotten.
Each folder remembers the highest mod-sequence it forgot, its `expunge_horizon`: a client that resynchronises
from before it is told every UID it may know of that is no longer in the folder, which RFC 7162 3.2.6 allows
a server keeping no expunge history at all to answer, instead of the log's exact list.
"""

from __future__ import annotations

import datetime
import itertools

from django.conf import settings
from django.utils import timezone

from mailboxes.actions.locks import action, lock
from mailboxes.models import ExpungedMessage, Mailbox


@action
def prune_expunge_log(*, before: datetime.datetime | None = None, batch: int = 1000) -> int:
    """Forget the oldest logged expunges made before `before` (default: MAILSITE_IMAP_EXPUNGE_KEEP ago), at most
    `batch` per call, raising each folder's horizon to the highest mod-sequence forgotten there; returns how
    many were forgotten."""
    if before is None:
        before = timezone.now() - datetime.timedelta(seconds=settings.MAILSITE_IMAP_EXPUNGE_KEEP)
    # Oldest first by id, the order they were logged in, so no index on the time is needed. Within a folder,
    # ids and mod-sequences ascend together (both are taken under the folder's lock): what stays has a
    # mod-sequence at least the horizon's.
    oldest = ExpungedMessage.objects.order_by("id").values_list("id", "mailbox_id", "modseq", "expunged")[:batch]
    rows = list(itertools.takewhile(lambda row: row[3] < before, oldest))
    if not rows:
        return 0
    horizons: dict[int, int] = {}
    for _, folder, modseq, _ in rows:
        horizons[folder] = max(modseq, horizons.get(folder, 0))
    lock(folders=horizons)
    ExpungedMessage.objects.filter(pk__in=[row[0] for row in rows]).delete()
    for folder, horizon in sorted(horizons.items()):
        Mailbox.objects.filter(pk=folder, expunge_horizon__lt=horizon).update(expunge_horizon=horizon)
    return len(rows)
