"""Imports (mbox, Maildir, another IMAP server): messages stored with the flags and internal date they had,
a batch per transaction, each skipped message with its reason; an IMAP import also records each remote
message's UIDVALIDITY/UID in the same transaction, so a resumed import never stores one twice."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils import timezone

from mailboxes import bulk
from mailboxes.actions import counters, storing
from mailboxes.actions.flags import split_flags
from mailboxes.actions.locks import action, lock
from mailboxes.models import Account, Message, MessageBody
from mailcore.mime import MimeError, ParsedMessage, parse_message
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
    (imported before, the mailbox is full, a hostile MIME structure); the others are stored regardless.

    The batch is written set-wise, as deliveries are: one UID reservation, one INSERT for the bodies and one
    for the messages, one for the records of where they came from."""
    lock(folders=[mailbox_id], accounts=[account.pk], owner=account.pk)
    results: list[str | None] = [None] * len(incoming)
    todo: list[int] = []
    done = _imported_before(account, [item.remote for item in incoming if item.remote])
    for index, item in enumerate(incoming):
        key = item.remote
        if key and (key.source, key.folder, key.uidvalidity, key.uid) in done:
            results[index] = "imported before"
            continue
        if key:
            done.add((key.source, key.folder, key.uidvalidity, key.uid))
        todo.append(index)
    _store(account, mailbox_id, incoming, todo, results)
    return results


def _imported_before(account: Account, keys: list[RemoteKey]) -> set[tuple[str, str, int, int]]:
    if not keys:
        return set()
    return set(
        ImportedMessage.objects.filter(
            account=account,
            source__in={key.source for key in keys},
            folder__in={key.folder for key in keys},
            uidvalidity__in={key.uidvalidity for key in keys},
            uid__in={key.uid for key in keys},
        ).values_list("source", "folder", "uidvalidity", "uid")
    )


def _store(
    account: Account, mailbox_id: int, incoming: Sequence[Incoming], todo: list[int], results: list[str | None]
) -> None:
    parsed: dict[int, ParsedMessage] = {}
    for index in todo:
        try:
            parsed[index] = parse_message(incoming[index].raw)
        except MimeError as error:
            results[index] = f"refused by the MIME parser: {error}"
    fitting = list(parsed)
    charged = counters.charge_quota_each(account.pk, [len(incoming[index].raw) for index in fitting])
    for index, fits in zip(fitting, charged, strict=True):
        if not fits:
            results[index] = "the mailbox is full"
    stored = [index for index, fits in zip(fitting, charged, strict=True) if fits]
    if not stored:
        return
    added = counters.flagged_all((len(incoming[index].raw), incoming[index].flags) for index in stored)
    first_uid, modseq = counters.allocate_uids(mailbox_id, len(stored), added)
    threads = storing.threads({account.pk: [parsed[index] for index in stored]})[account.pk]
    bodies = [MessageBody(raw=incoming[index].raw, size=len(incoming[index].raw)) for index in stored]
    messages = []
    for offset, (index, body, thread) in enumerate(zip(stored, bodies, threads, strict=True)):
        message = storing.message_row(
            storing.message_columns(parsed[index], body),
            account_id=account.pk,
            mailbox_id=mailbox_id,
            uid=first_uid + offset,
            modseq=modseq,
            body=body,
            thread_id=thread,
        )
        system, keywords = split_flags(incoming[index].flags)
        for column, value in system.items():
            setattr(message, column, value)
        message.keywords = f" {' '.join(keywords)} " if keywords else ""
        message.internal_date = incoming[index].internal_date or timezone.now()
        messages.append(message)
    bulk.insert_linked(bodies, messages, "body")
    _record(account, [(incoming[index], message) for index, message in zip(stored, messages, strict=True)])


def _record(account: Account, stored: list[tuple[Incoming, Message]]) -> None:
    ImportedMessage.objects.bulk_create(
        ImportedMessage(
            account=account,
            source=item.remote.source,
            folder=item.remote.folder,
            uidvalidity=item.remote.uidvalidity,
            uid=item.remote.uid,
            message=message,
        )
        for item, message in stored
        if item.remote
    )
