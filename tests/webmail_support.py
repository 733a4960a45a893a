"""Shared by the webmail tests: messages built and delivered the way SMTP delivers them."""

from __future__ import annotations

import itertools
from email import policy
from email.message import EmailMessage

from mailboxes import services
from mailboxes.models import Account, Mailbox, Message, Role

_counter = itertools.count(1)


def make_raw(
    *,
    to: str,
    sender: str = "Bob Sender <bob@remote.test>",
    subject: str = "Hello",
    text: str | None = "Hi there",
    html: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<test-{next(_counter)}@remote.test>"
    msg["Date"] = "Mon, 03 Mar 2025 10:00:00 +0000"
    for name, value in (headers or {}).items():
        msg[name] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def deliver(account: Account, raw: bytes | None = None, **fields) -> Message:
    """Deliver to the account's Inbox as the SMTP listener does; returns the stored message."""
    report = services.deliver(raw or make_raw(to=account.address, **fields), "bob@remote.test", [account.address])
    return Message.objects.get(pk=report.message_ids[0])


def folder(account: Account, role: Role) -> Mailbox:
    return Mailbox.objects.get(account=account, role=role)
