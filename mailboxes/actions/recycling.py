"""The recycle bin: messages their owner removed, kept for MAILSITE_RETENTION_DAYS, then purged.

Removal (EXPUNGE, POP3 DELE at QUIT, the webmail's "delete forever", a deleted folder) moves each message's
row here and keeps its body, as Dovecot's lazy_expunge keeps mail in a hidden folder: IMAP and POP3 never see
it, and the quota no longer counts it. The owner (webmail) or an administrator restores it into the folder it
came from (the Inbox if that folder is gone) with its flags and internal date, under a new UID. A periodic
task purges what is older than the retention, and the bodies nothing else refers to.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.utils import timezone

from mailboxes.actions import counters, storing
from mailboxes.actions.errors import NotFound, OverQuota
from mailboxes.actions.flags import SYSTEM_FLAGS, flag_names, split_flags
from mailboxes.actions.locks import action, lock
from mailboxes.models import Account, Mailbox, Message, MessageBody, RecycledMessage, Role
from mailcore.mime import parse_message

# The Message columns that removing a message reads: what it releases and logs, and what the bin keeps.
REMOVED_COLUMNS = (
    "uid", "size", "body_id", "mailbox_id", "mailbox__name", "account_id", "subject", "from_name",
    "from_address", "internal_date", "keywords", *SYSTEM_FLAGS.values(),
)  # fmt: skip


def keep(rows: Sequence[Message]) -> bool:
    """Copy these messages (read with REMOVED_COLUMNS and their folder) into the recycle bin, for an action about
    to delete their rows (it holds their folders' and account's locks). Nothing is kept when
    MAILSITE_RETENTION_DAYS is 0. Whether they were kept: if so, the bin refers to every one of their bodies."""
    kept = bin_rows(rows)
    RecycledMessage.objects.bulk_create(kept)
    return bool(kept)


def keeping() -> bool:
    """Whether removed messages go to the bin (MAILSITE_RETENTION_DAYS is not 0)."""
    return settings.MAILSITE_RETENTION_DAYS > 0


def bin_rows(rows: Sequence[Message]) -> list[RecycledMessage]:
    """The recycle bin's rows for these messages (read with REMOVED_COLUMNS and their folder), not saved; none when
    MAILSITE_RETENTION_DAYS is 0."""
    if not keeping():
        return []
    now = timezone.now()
    return [
        RecycledMessage(
            account_id=row.account_id,
            folder_name=row.mailbox.name,
            body_id=row.body_id,
            size=row.size,
            subject=row.subject,
            from_name=row.from_name,
            from_address=row.from_address,
            internal_date=row.internal_date,
            flags=" ".join(flag_names(row)),
            removed=now,
        )
        for row in rows
    ]


def drop_bodies(body_ids: Iterable[int]) -> None:
    """Delete those of these bodies that no message and no recycled message refers to any more."""
    # Only their ids are read before the DELETE, not the bytes.
    unused = MessageBody.objects.filter(pk__among=set(body_ids), messages__isnull=True, recycled__isnull=True)
    unused.only("id").delete()


@action
def restore(account: Account, recycled_ids: Sequence[int]) -> list[Message]:
    """Put recycled messages back: into the folder they came from, or the Inbox if it is gone. Counts against
    the quota again (OverQuota when they do not fit: nothing is restored)."""
    items = list(RecycledMessage.objects.filter(account=account, pk__in=recycled_ids).select_related("body"))
    if not items:
        raise NotFound("nothing to restore")
    folders = dict(
        Mailbox.objects.filter(account=account, name__in={item.folder_name for item in items}).values_list("name", "id")
    )
    inbox = Mailbox.objects.get(account=account, role=Role.INBOX).pk
    targets = {item.pk: folders.get(item.folder_name, inbox) for item in items}
    lock(folders=set(targets.values()), accounts=[account.pk])
    if not counters.charge_quota(account.pk, sum(item.size for item in items), len(items)):
        raise OverQuota("the mailbox is full")
    restored = []
    for folder in sorted(set(targets.values())):
        group = [item for item in items if targets[item.pk] == folder]
        added = counters.flagged_all((item.size, item.flags.split()) for item in group)
        first_uid, modseq = counters.allocate_uids(folder, len(group), added)
        parsed = [parse_message(bytes(item.body.raw)) for item in group]
        threads = storing.threads({account.pk: parsed})[account.pk]
        for offset, (item, message, thread) in enumerate(zip(group, parsed, threads, strict=True)):
            row = storing.message_row(
                storing.message_columns(message, item.body),
                account_id=account.pk,
                mailbox_id=folder,
                uid=first_uid + offset,
                modseq=modseq,
                body=item.body,
                thread_id=thread,
            )
            system, keywords = split_flags(item.flags.split())
            for column, value in system.items():
                setattr(row, column, value)
            row.keywords = f" {' '.join(keywords)} " if keywords else ""
            row.internal_date = item.internal_date
            row.save(force_insert=True)
            restored.append(row)
    RecycledMessage.objects.filter(pk__in=[item.pk for item in items]).delete()
    return restored


@action
def purge_recycled(*, retention_days: int | None = None, batch: int = 1000) -> int:
    """Drop recycled messages older than the retention, and their bodies where nothing else refers to them;
    returns how many went (at most `batch` per call)."""
    days = settings.MAILSITE_RETENTION_DAYS if retention_days is None else retention_days
    before = timezone.now() - datetime.timedelta(days=days)
    rows = list(RecycledMessage.objects.filter(removed__lt=before).values_list("id", "body_id")[:batch])
    if not rows:
        return 0
    RecycledMessage.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
    drop_bodies(body for _, body in rows)
    return len(rows)
