"""Imports (mbox, Maildir, another IMAP server): messages stored with the flags and internal date they had,
a batch per transaction, each skipped message with its reason; an IMAP import also records each remote
message's UIDVALIDITY/UID in the same transaction, so a resumed import never stores one twice."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import DataError

from mailboxes import changes
from mailboxes.actions import counters
from mailboxes.actions.errors import OverQuota
from mailboxes.actions.locks import action, lock
from mailboxes.actions.messages import append
from mailboxes.models import Account
from mailcore.mime import MimeError
from transfer.models import ImportedMessage


@dataclass(frozen=True)
class RemoteKey:
    """Where an imported message came from: the pair (UIDVALIDITY, UID) names it for ever (RFC 3501 2.3.1.1)."""

    source: str
    folder: str
    uidvalidity: int
    uid: int


@dataclass
class Incoming:
    raw: bytes
    flags: list[str] = field(default_factory=list)
    internal_date: datetime.datetime | None = None
    remote: RemoteKey | None = None


@action
def import_messages(account: Account, mailbox_id: int, incoming: Sequence[Incoming]) -> list[str | None]:
    """Store `incoming` in one folder in one transaction. Returns, per message, None when stored, else why not
    (already imported, the mailbox is full, a hostile MIME structure); the others are stored regardless."""
    lock(folders=[counters.own_folder(account, mailbox_id)], accounts=[account.pk])
    keys = [item.remote for item in incoming if item.remote]
    done = set()
    if keys:
        done = set(
            ImportedMessage.objects.filter(
                account=account,
                source__in={key.source for key in keys},
                folder__in={key.folder for key in keys},
                uidvalidity__in={key.uidvalidity for key in keys},
                uid__in={key.uid for key in keys},
            ).values_list("source", "folder", "uidvalidity", "uid")
        )
    results: list[str | None] = []
    with changes.batched():
        for item in incoming:
            key = item.remote
            if key and (key.source, key.folder, key.uidvalidity, key.uid) in done:
                results.append("imported before")
                continue
            try:
                message = append(account, mailbox_id, item.raw, flags=item.flags, internal_date=item.internal_date)
            except OverQuota:
                results.append("the mailbox is full")
                continue
            except MimeError as error:
                results.append(f"refused by the MIME parser: {error}")
                continue
            except DataError as error:  # e.g. a NUL byte in a text column (PostgreSQL refuses those)
                results.append(f"refused by the database: {str(error).strip()}")
                continue
            if key:
                ImportedMessage.objects.create(
                    account=account,
                    source=key.source,
                    folder=key.folder,
                    uidvalidity=key.uidvalidity,
                    uid=key.uid,
                    message=message,
                )
                done.add((key.source, key.folder, key.uidvalidity, key.uid))
            results.append(None)
    return results
