"""Building and sending mail written in the webmail.

Messages are built with the standard library's email package (EmailMessage, SMTP policy) from plain strings
the user typed, never by copying parsed header objects: a parsed header whose encoded-word decodes to CR/LF
would otherwise be re-folded into a new header line. Every value is checked for line breaks after decoding;
values copied from a stored message (a reply's subject, a sender's display name) are flattened onto one line.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.utils import timezone

from mailboxes import actions
from mailboxes.models import Account, Mailbox, Message, Role
from mailcore.authors import AmbiguousAuthor, author_domain
from mailcore.authors import authors as read_authors
from mailcore.mime import html_to_text
from webmail.addresses import AddressError, flatten, has_line_break
from webmail.templatetags.webmail import filesize

_MSG_ID = re.compile(r"^<[^<>\s]{1,900}>$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
MAX_REFERENCES = 20  # keep References short; the first and the latest ids identify the thread (RFC 5322 3.6.4)


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Outgoing:
    """A message as the compose form describes it; addresses already parsed and validated."""

    sender: Account
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    subject: str
    body: str
    attachments: list[Attachment] = field(default_factory=list)
    body_html: str = ""  # sanitised HTML from the editor; the plain-text part is then generated from it
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)

    @property
    def recipients(self) -> list[str]:
        seen: dict[str, None] = {}
        for address in [*self.to, *self.cc, *self.bcc]:
            seen.setdefault(address.addr_spec, None)
        return list(seen)


def check_text(value: str, label: str) -> str:
    """A typed single-line value, refused if it holds a line break (header injection)."""
    if has_line_break(value):
        raise AddressError(f"{label}: line breaks are not allowed")
    return value.strip()


def message_ids(values: list[str]) -> list[str]:
    """Only well-formed msg-ids survive; anything else (including decoded line breaks) is dropped."""
    return [value for value in values if _MSG_ID.match(value)]


def reply_references(original: Message) -> list[str]:
    references = message_ids([*original.references.split(), original.message_id])
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    return references


def build(outgoing: Outgoing, *, message_id: str, include_bcc: bool) -> bytes:
    """The RFC 5322 bytes of the message. Bcc is kept only in the sender's own copy."""
    msg = EmailMessage(policy=policy.SMTP)
    display = flatten(outgoing.sender.display_name)
    msg["From"] = Address(display_name=display, addr_spec=outgoing.sender.address)
    if outgoing.to:
        msg["To"] = outgoing.to
    if outgoing.cc:
        msg["Cc"] = outgoing.cc
    if include_bcc and outgoing.bcc:
        msg["Bcc"] = outgoing.bcc
    msg["Subject"] = check_text(outgoing.subject, "Subject")
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = message_id
    in_reply_to = message_ids([outgoing.in_reply_to])
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to[0]
    references = message_ids(outgoing.references)
    if references:
        msg["References"] = " ".join(references)
    if outgoing.body_html:
        _set_html(msg, outgoing.body_html, outgoing.body)
    else:
        msg.set_content(outgoing.body.replace("\r\n", "\n"))
    for attachment in outgoing.attachments:
        content_type = attachment.content_type.lower()
        if not _CONTENT_TYPE.match(content_type):
            content_type = "application/octet-stream"
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=flatten(attachment.filename) or "file"
        )
    return msg.as_bytes()


_DATA_IMAGE = re.compile(r'src="data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=\s]+)"', re.I)


def _set_html(msg: EmailMessage, html: str, text: str) -> None:
    """multipart/alternative of a plain-text part and the HTML; images pasted into the editor (data: URLs)
    become parts of a multipart/related referenced by cid: (RFC 2387, RFC 2392). The plain text is the
    editor's own rendering of the HTML as text (lists, line breaks and "-- " kept), else made from the HTML."""
    images: list[tuple[str, str, bytes]] = []

    def to_cid(match: re.Match) -> str:
        content_id = make_msgid(domain="inline.invalid")
        images.append((content_id, match[1].lower(), base64.b64decode(match[2])))
        return f'src="cid:{content_id[1:-1]}"'

    html = _DATA_IMAGE.sub(to_cid, html)
    plain = text.replace("\r\n", "\n") if text.strip() else html_to_text(html).strip() + "\n"
    msg.set_content(plain)
    msg.add_alternative(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{html}</body></html>', subtype="html"
    )
    html_part = msg.get_body(("html",))
    assert html_part is not None
    for content_id, content_type, data in images:
        maintype, subtype = content_type.split("/")
        html_part.add_related(data, maintype=maintype, subtype=subtype, cid=content_id, disposition="inline")


def new_message_id(account: Account) -> str:
    return make_msgid(domain=account.domain.name)


class SendError(actions.ServiceError):
    pass


def encoded_size(outgoing: Outgoing) -> int:
    """The size of the message as it would be sent (attachments base64-encoded), Bcc included."""
    return len(build(outgoing, message_id=f"<size-check@{outgoing.sender.domain.name}>", include_bcc=True))


def too_big(outgoing: Outgoing) -> str | None:
    """Why the message cannot go out, if it is over the size SMTP accepts (the limit smtpd enforces): base64
    makes attachments a third bigger, so the check is on the encoded message, not on the files."""
    limit = settings.MAILSITE_MAX_MESSAGE_SIZE
    size = encoded_size(outgoing)
    if size <= limit:
        return None
    return (
        f"The message is too big: {filesize(size)} once encoded for mail, and the limit is {filesize(limit)}. "
        "Remove attachments or share big files as a link."
    )


def refusals(refused: dict[str, actions.RecipientStatus]) -> str:
    """Why recipients could not get the message, as one line ("bob@example.com: the mailbox is full")."""
    reasons = {
        actions.RecipientStatus.UNKNOWN: "no such mailbox here",
        actions.RecipientStatus.OVER_QUOTA: "the mailbox is full",
    }
    return "; ".join(f"{rcpt}: {reasons.get(status, 'refused')}" for rcpt, status in refused.items())


def _role_folder(account: Account, role: Role) -> Mailbox:
    folder = Mailbox.objects.filter(account=account, role=role).first()
    if folder is None:
        raise SendError(f"the {role.label} folder is missing")
    return folder


def send(outgoing: Outgoing, *, replying_to: Message | None = None, draft: Message | None = None) -> Message:
    """Send as SMTP submission does (local recipients get it now, other domains go to the outbound queue), keep
    a copy in Sent, mark the original answered and drop the draft: one action, all or nothing."""
    account = outgoing.sender
    message_id = new_message_id(account)
    transmitted = build(outgoing, message_id=message_id, include_bcc=False)
    try:
        # The same reading of From: that SMTP submission makes (a display name that looks like an address is
        # refused there too), and the domain the relay signs for.
        author = author_domain(read_authors(transmitted))
    except AmbiguousAuthor as exc:
        raise SendError(f"{exc}; change the display name in your settings") from None
    copy = build(outgoing, message_id=message_id, include_bcc=True) if outgoing.bcc else transmitted
    return actions.send(
        account,
        transmitted,
        outgoing.recipients,
        sent_copy=copy,
        sent_folder=_role_folder(account, Role.SENT).pk,
        answered=(replying_to.mailbox_id, replying_to.uid) if replying_to is not None else None,
        draft=(draft.mailbox_id, draft.uid) if draft is not None else None,
        author_domain=author,
    )


def save_draft(outgoing: Outgoing, *, previous: Message | None) -> Message:
    """Store the message in Drafts (replacing the previous version of the same draft)."""
    account = outgoing.sender
    raw = build(outgoing, message_id=new_message_id(account), include_bcc=True)
    return actions.save_draft(
        account,
        raw,
        drafts_folder=_role_folder(account, Role.DRAFTS).pk,
        previous=(previous.mailbox_id, previous.uid) if previous is not None else None,
    )
