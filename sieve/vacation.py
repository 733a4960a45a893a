"""Vacation (RFC 5230): whether to answer, and the answer. Pure: the caller keeps the "already answered" log.

Never answered (RFC 5230 4.5 and 4.6, RFC 3834 2): the null sender; the recipient's own addresses; senders
that are list or system addresses (owner-*, *-request, MAILER-DAEMON, LISTSERV, majordomo); messages that
are automatic (Auto-Submitted other than "no"), from lists (any List-* field of RFC 2369 / RFC 2919) or bulk
(Precedence bulk, list or junk); and messages that do not name one of the user's addresses in To, Cc, Bcc or
their Resent- forms (mail the user got as Bcc of a list, for instance).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from sieve.actions import Vacation
from sieve.message import MessageView

_SYSTEM_SENDERS = ("mailer-daemon", "listserv", "majordomo")
_LIST_FIELDS = ("list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive")
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")


def refusal(envelope_from: str, message: MessageView, own: list[str]) -> str | None:
    """Why no vacation reply may be sent for this message, or None if one may."""
    sender = envelope_from.lower()
    if not sender:
        return "the sender is the null address"
    local = sender.rpartition("@")[0]
    own_lower = {address.lower() for address in own}
    if sender in own_lower:
        return "the sender is the recipient"
    if local in _SYSTEM_SENDERS or local.startswith("owner-") or local.endswith("-request"):
        return "the sender is a list or system address"
    for value in message.header("auto-submitted"):
        if value.split(";")[0].strip().lower() != "no":
            return "the message was sent automatically (Auto-Submitted)"
    if any(message.raw_values(name) for name in _LIST_FIELDS):
        return "the message came from a mailing list"
    if any(value.strip().lower() in ("bulk", "list", "junk") for value in message.header("precedence")):
        return "the message is bulk mail (Precedence)"
    named = {
        f"{local}@{domain}".lower() if domain is not None else local.lower()
        for name in _RECIPIENT_FIELDS
        for local, domain in message.addresses(name)
    }
    if not named & own_lower:
        return "the message does not name the recipient in To or Cc"
    return None


def _one_line(text: str) -> str:
    """A header value from script text or a decoded subject: line breaks would start new fields."""
    return " ".join(text.split())


def handle_key(action: Vacation) -> str:
    """What identifies "the same" vacation reply for the once-per-:days rule (RFC 5230 4.2)."""
    identity = action.handle or "\0".join((action.reason, action.subject or "", action.from_ or ""))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def build_reply(
    action: Vacation, message: MessageView, *, recipient: str, to: str, now: datetime.datetime, hostname: str
) -> bytes:
    """The reply's bytes (RFC 5230 5): to the envelope sender, marked Auto-Submitted: auto-replied."""
    reply = EmailMessage(policy=SMTP)
    original_subject = (message.header("subject") or [""])[0]
    reply["From"] = _one_line(action.from_ or recipient)
    reply["To"] = to
    # RFC 5230 5.6: without :subject, "Auto:" and the original subject.
    subject = action.subject if action.subject is not None else f"Auto: {original_subject}"
    reply["Subject"] = _one_line(subject)
    reply["Date"] = format_datetime(now)
    reply["Message-ID"] = f"<vacation.{secrets.token_hex(12)}@{hostname}>"
    message_id = message.parsed.message_id
    if message_id:
        # RFC 5230 5.8: In-Reply-To and References point at the original.
        reply["In-Reply-To"] = message_id
        reply["References"] = " ".join([*message.parsed.references, message_id][-10:])
    reply["Auto-Submitted"] = "auto-replied (vacation)"  # RFC 5230 5.1, RFC 3834 5
    reply["Precedence"] = "bulk"
    if action.mime:
        # RFC 5230 4.3 :mime: the reason is a MIME entity with its own header fields.
        head, _, body = action.reason.replace("\r\n", "\n").partition("\n\n")
        reply["MIME-Version"] = "1.0"
        for line in head.split("\n"):
            name, _, value = line.partition(":")
            if name.strip().lower().startswith("content-") and value:
                reply[name.strip()] = value.strip()
        reply.set_payload(body.replace("\n", "\r\n"))
    else:
        reply.set_content(action.reason, charset="utf-8")
    return reply.as_bytes()
