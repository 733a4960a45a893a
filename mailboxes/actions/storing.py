"""Turning a parsed message into a stored row: its conversation, its list columns and its IMAP wire forms."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection
from django.utils import timezone

from mailboxes import search_document
from mailboxes.actions.flags import set_row_flags
from mailboxes.models import Message, MessageBody
from mailcore.crlf import crlf_size
from mailcore.imap_wire import message_wire
from mailcore.mime import ParsedMessage
from mailcore.subject import base_subject

# A hostile References field can list thousands of ids; the most recent ones (at its end) are enough to thread.
_THREADING_REFERENCES = 50


def _references(parsed: ParsedMessage) -> list[str]:
    # Its own Message-ID counts too: the copy a sender keeps in Sent joins the thread of the delivered copy.
    refs = [*parsed.references[-_THREADING_REFERENCES:], parsed.in_reply_to, parsed.message_id]
    return [ref for ref in refs if ref]


def _known_threads(wanted: set[tuple[int, str]]) -> dict[tuple[int, str], uuid.UUID]:
    """The conversations of stored messages, by (account, Message-ID), for the pairs in `wanted` (one query)."""
    if not wanted:
        return {}
    accounts = sorted({account_id for account_id, _ in wanted})
    references = sorted({reference for _, reference in wanted})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT account_id, message_id, thread_id FROM {Message._meta.db_table} "
            f"WHERE account_id IN ({', '.join(['%s'] * len(accounts))}) "
            f"AND message_id IN ({', '.join(['%s'] * len(references))})",
            [*accounts, *references],
        )
        rows = cursor.fetchall()
    return {
        (account_id, ref): uuid.UUID(str(thread)) for account_id, ref, thread in rows if (account_id, ref) in wanted
    }


def _thread_by_subject(account_id: int, parsed: ParsedMessage) -> uuid.UUID | None:
    """A "Re:"/"Fwd:" subject without usable references joins the latest conversation of that subject."""
    subject = base_subject(parsed.subject)
    if not subject or subject == parsed.subject.strip().casefold():
        return None
    since = timezone.now() - datetime.timedelta(days=60)
    for thread_id, candidate in (
        Message.objects.filter(account_id=account_id, internal_date__gte=since, subject__icontains=subject)
        .order_by("-internal_date")
        .values_list("thread_id", "subject")[:20]
    ):
        if base_subject(candidate) == subject:
            return thread_id
    return None


def threads(messages: Mapping[int, Sequence[ParsedMessage]]) -> dict[int, list[uuid.UUID]]:
    """The conversation each account's messages join there: the first of a message's References, In-Reply-To
    or own Message-ID that the account already has (one query for all; earlier messages of the same list
    count), then a reply subject, else a new conversation."""
    known = _known_threads(
        {
            (account_id, ref)
            for account_id, parsed in messages.items()
            for message in parsed
            for ref in _references(message)
        }
    )
    threads: dict[int, list[uuid.UUID]] = {}
    for account_id, parsed in messages.items():
        threads[account_id] = []
        for message in parsed:
            found = next((known[account_id, ref] for ref in _references(message) if (account_id, ref) in known), None)
            thread = found or _thread_by_subject(account_id, message) or uuid.uuid4()
            if message.message_id:
                known.setdefault((account_id, message.message_id), thread)
            threads[account_id].append(thread)
    return threads


def _join(addresses: Iterable) -> str:
    return ", ".join(f"{a.name} <{a.address}>" if a.name else a.address for a in addresses)


def message_columns(parsed: ParsedMessage, body: MessageBody) -> dict[str, Any]:
    """The columns of a message's row that follow from the message alone, whichever account and folder a copy of it
    is for: worked out once per message (a delivery works them out before it takes its locks, and its copies for
    several accounts share them)."""
    sender = parsed.from_[0] if parsed.from_ else None
    imap_envelope, imap_bodystructure, imap_body = message_wire(parsed)
    from_name = (sender.name if sender else "")[:300]
    from_address = (sender.address if sender else "")[:320]
    to_addresses, cc_addresses = _join(parsed.to), _join(parsed.cc)
    return {
        "size": body.size,
        "crlf_size": crlf_size(body.raw),
        "subject": parsed.subject,
        "from_name": from_name,
        "from_address": from_address,
        "to_addresses": to_addresses,
        "cc_addresses": cc_addresses,
        "bcc_addresses": _join(parsed.bcc),
        "sent_date": parsed.date,
        "message_id": parsed.message_id[:998],
        "in_reply_to": parsed.in_reply_to[:998],
        "references": " ".join(parsed.references),
        "has_attachments": parsed.has_attachments,
        "attachment_names": search_document.attachments(parsed.root) if parsed.has_attachments else "",
        "snippet": parsed.snippet[:200],
        "search_text": parsed.text,
        "search_words": search_document.words(
            parsed.subject, from_name, from_address, to_addresses, cc_addresses, parsed.text
        ),
        "envelope": parsed.envelope_json(),
        "structure": parsed.structure_json(),
        "imap_envelope": imap_envelope,
        "imap_bodystructure": imap_bodystructure,
        "imap_body": imap_body,
    }


def message_row(
    columns: Mapping[str, Any],
    *,
    account_id: int,
    mailbox_id: int,
    uid: int,
    modseq: int,
    body: MessageBody,
    thread_id: uuid.UUID,
) -> Message:
    """The row of one copy: the message's `columns` (`message_columns`) in this account's folder."""
    return Message(
        account_id=account_id,
        mailbox_id=mailbox_id,
        uid=uid,
        modseq=modseq,
        body=body,
        thread_id=thread_id,
        **columns,
    )


def new_row(
    parsed: ParsedMessage,
    raw: bytes,
    *,
    account_id: int,
    mailbox_id: int,
    flags: Iterable[str] = (),
    internal_date: datetime.datetime | None = None,
) -> Message:
    """The row of one message for one folder, with its body, not yet stored: in its conversation (`threads`, one
    look, no lock), with these IMAP flags and INTERNALDATE (now when not given); its UID and mod-sequence are
    set once reserved."""
    body = MessageBody(raw=raw, size=len(raw))
    [thread] = threads({account_id: [parsed]})[account_id]
    row = message_row(
        message_columns(parsed, body),
        account_id=account_id,
        mailbox_id=mailbox_id,
        uid=0,
        modseq=0,
        body=body,
        thread_id=thread,
    )
    set_row_flags(row, flags)
    row.internal_date = internal_date or timezone.now()
    return row


def with_return_path(raw: bytes, envelope_sender: str) -> bytes:
    """Prepend the Return-Path header the final delivery adds (RFC 5321 4.4)."""
    return b"Return-Path: <" + envelope_sender.encode("utf-8") + b">\r\n" + raw
