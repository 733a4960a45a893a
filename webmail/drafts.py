"""A stored message read back into what the compose form holds: to resume a draft, or to send it later."""

from __future__ import annotations

import html
from dataclasses import dataclass

from mailboxes.models import Account, Message
from mailcore.headers import decode_words
from mailcore.mime import Envelope, EnvelopeAddress, decode_body, part_text
from webmail import compose, sanitize
from webmail.addresses import flatten, format_address
from webmail.reading import Reading

MAX_QUOTED_CHARS = 200_000


@dataclass
class Kept:
    """An attachment carried over from a stored message (forwarded, or already saved in a draft)."""

    message_id: int
    index: int
    filename: str
    size: int

    @property
    def key(self) -> str:
        return f"{self.message_id}:{self.index}"


def kept_of(message: Message) -> list[Kept]:
    return [Kept(message.pk, a.index, a.filename, a.size) for a in Reading(message).attachments]


def attachment_data(kept: list[Kept], uploads: list) -> list[compose.Attachment]:
    result: list[compose.Attachment] = []
    sources = {m.pk: m for m in Message.objects.filter(pk__in={k.message_id for k in kept}).select_related("body")}
    for item in kept:
        source = sources[item.message_id]
        reading = Reading(source)
        part = reading.part(item.index)
        if part is not None:
            data = decode_body(bytes(source.body.raw), part)
            result.append(compose.Attachment(item.filename, part.content_type, data))
    for upload in uploads:
        result.append(compose.Attachment(upload.name, upload.content_type or "application/octet-stream", upload.read()))
    return result


def addresses(items: list[EnvelopeAddress]) -> list[tuple[str, str]]:
    """(decoded display name, address) of parsed header addresses; group markers are skipped.

    The structured envelope is used rather than the comma-joined display columns, whose decoded names may
    themselves contain commas, colons or line breaks.
    """
    return [(decode_words(a.name or ""), f"{a.mailbox}@{a.host}") for a in items if a.mailbox and a.host]


def field(items: list[EnvelopeAddress]) -> str:
    return ", ".join(format_address(name, address) for name, address in addresses(items))


def quoted_text(message: Message) -> str:
    return Reading(message).text(bytes(message.body.raw))[:MAX_QUOTED_CHARS]


def text_html(text: str) -> str:
    """Plain text as editor paragraphs."""
    # A trailing space (the "-- " before a signature) as &nbsp;, which editors and HTML keep.
    lines = (
        html.escape(line[:-1]) + "&nbsp;" if line.endswith(" ") else html.escape(line) for line in text.split("\n")
    )
    return "".join(f"<div>{line or '<br>'}</div>" for line in lines)


def quoted_html(message: Message) -> str:
    """The message's HTML body made safe for the editor (its cid: images as data: URLs), else its text."""
    reading = Reading(message)
    raw = bytes(message.body.raw)
    for body in reading.bodies:
        part = reading.part(body.index)
        if body.is_html and part is not None:
            markup = part_text(raw, part)[:MAX_QUOTED_CHARS]
            return sanitize.clean_outgoing(markup, inline=lambda cid: reading.inline(raw, cid))
    return text_html(quoted_text(message))


def fields(draft: Message) -> dict:
    """The compose form's values of a stored draft (its attachments are `kept_of(draft)`)."""
    envelope = Envelope.from_json(draft.envelope)
    reading = Reading(draft)
    return {
        "to": field(envelope.to),
        "cc": field(envelope.cc),
        "bcc": field(envelope.bcc),
        "subject": flatten(draft.subject),
        "body": reading.text(bytes(draft.body.raw)),
        "body_html": quoted_html(draft) if any(b.is_html for b in reading.bodies) else "",
        "in_reply_to": draft.in_reply_to,
        "references": draft.references,
        "draft": draft.pk,
    }


def outgoing(sender: Account, data: dict, attachments: list[compose.Attachment]) -> compose.Outgoing:
    """The message the compose form's cleaned values describe."""
    return compose.Outgoing(
        sender=sender,
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        subject=data["subject"],
        body=data["body"],
        body_html=sanitize.clean_outgoing(data["body_html"]) if data["body_html"].strip() else "",
        attachments=attachments,
        in_reply_to=data["in_reply_to"],
        references=data["references"].split(),
    )
