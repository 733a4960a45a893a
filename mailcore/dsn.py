"""Delivery status notifications (RFC 3464): a multipart/report (RFC 6522) with the original headers.

Pure: the caller supplies names, times and the original message; the result is the DSN's bytes.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime

from mailcore.crlf import to_crlf

NOTIFY_WHEN = ("SUCCESS", "FAILURE", "DELAY")  # RFC 3461 4.1, in the order the queue stores them


def notifies(notify: str, when: str) -> bool:
    """Whether a recipient with this NOTIFY (empty: not given) wants a notice of `when`: SUCCESS, FAILURE or
    DELAY. Without NOTIFY the sender gets failures and delays, as before (RFC 3461 4.1 leaves the choice between
    FAILURE and FAILURE,DELAY to us)."""
    return when in (notify or "FAILURE,DELAY").split(",")


@dataclass(frozen=True)
class Requests:
    """What the sender asked in the envelope (RFC 3461 4, RFC 8689 3); the defaults are what we do unasked."""

    ret: str = ""  # FULL or HDRS
    envid: str = ""
    require_tls: bool = False
    notify: Mapping[str, str] = field(default_factory=dict)  # by recipient: NEVER, or some of NOTIFY_WHEN
    orcpt: Mapping[str, str] = field(default_factory=dict)  # by recipient: "addr-type;address"

    def notifies(self, recipient: str, when: str) -> bool:
        return notifies(self.notify.get(recipient, ""), when)


UNASKED = Requests()  # a message whose sender asked nothing: today's defaults


@dataclass(frozen=True)
class RecipientReport:
    recipient: str
    action: str  # RFC 3464 2.3.3: "failed", "delayed", "delivered" or "relayed"
    status: str  # RFC 3463 code such as "5.1.1"
    diagnostic: str  # the remote reply ("550 5.1.1 no such user") or our own reason (DNS failures)
    smtp_reply: bool = True  # whether `diagnostic` is an SMTP reply (diagnostic-type "smtp")
    remote_mta: str = ""
    last_attempt: datetime.datetime | None = None
    original_recipient: str = ""  # RFC 3461 ORCPT, "addr-type;address"


def header_section(raw: bytes) -> bytes:
    """The original message's header section, without the blank line that ends it."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end != -1:
            return raw[:end]
    return raw


def _clean(value: str) -> str:
    # Multi-line SMTP replies arrive joined with newlines; a header field must stay on one line.
    return " ".join(value.split())


def build_dsn(
    *,
    reporting_mta: str,
    to: str,
    original: bytes,
    recipients: Sequence[RecipientReport],
    arrival: datetime.datetime,
    now: datetime.datetime,
    will_retry_until: datetime.datetime | None = None,
    ret: str = "",
    envid: str = "",
) -> bytes:
    """A DSN for `to` (the original envelope sender) about `recipients` of the message `original`.

    It returns the original's header section, or the whole message for failures when the sender asked for it
    with RET=FULL (RFC 3461 4.3); `envid` is the sender's ENVID (RFC 3461 4.4, RFC 3464 2.2.1)."""
    delayed = all(report.action == "delayed" for report in recipients)
    succeeded = all(report.action in ("delivered", "relayed") for report in recipients)
    boundary = f"dsn-{secrets.token_hex(12)}"
    subject = "Delayed Mail (still being retried)" if delayed else "Undelivered Mail Returned to Sender"
    if succeeded:
        subject = "Successful Mail Delivery Report"
    lines = [
        "This is the mail system at " + reporting_mta + ".",
        "",
    ]
    if succeeded:
        lines.append("Your message was delivered to the recipients below, as you asked to be told.")
        lines.append('A recipient marked "relayed" was handed to a system that sends no further notice.')
    elif delayed:
        lines.append("Your message could not be delivered yet to the recipients below. It will be retried")
        until = format_datetime(will_retry_until) if will_retry_until else "later"
        lines.append(f"until {until}; you do not need to send it again.")
    else:
        lines.append("Your message could not be delivered to the recipients below. This is permanent.")
    lines.append("")
    for report in recipients:
        lines.append(f"<{report.recipient}>: {_clean(report.diagnostic)}")
    human = "\r\n".join(lines) + "\r\n"

    per_message = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        per_message.append(f"Original-Envelope-Id: {envid}")
    per_message.append(f"Arrival-Date: {format_datetime(arrival)}")
    fields = ["\r\n".join(per_message)]
    for report in recipients:
        block = [f"Original-Recipient: {report.original_recipient}"] if report.original_recipient else []
        block += [
            f"Final-Recipient: rfc822; {report.recipient}",
            f"Action: {report.action}",
            f"Status: {report.status}",
        ]
        if report.remote_mta:
            block.append(f"Remote-MTA: dns; {report.remote_mta}")
        kind = "smtp" if report.smtp_reply else "X-Mailsite"
        block.append(f"Diagnostic-Code: {kind}; {_clean(report.diagnostic)}")
        block.append(f"Last-Attempt-Date: {format_datetime(report.last_attempt or now)}")
        if report.action == "delayed" and will_retry_until:
            block.append(f"Will-Retry-Until: {format_datetime(will_retry_until)}")
        fields.append("\r\n".join(block))
    status = "\r\n\r\n".join(fields) + "\r\n"

    whole = ret == "FULL" and all(report.action == "failed" for report in recipients)
    headers = to_crlf(original if whole else header_section(original))
    # RFC 6533: headers with raw UTF-8 (SMTPUTF8 mail) travel as message/global-headers (message/global).
    if whole:
        headers_type = "message/rfc822" if headers.isascii() else "message/global"
    else:
        headers_type = "text/rfc822-headers" if headers.isascii() else "message/global-headers"
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{secrets.token_hex(16)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",  # RFC 3834: no automatic replies to this
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    parts = [
        "\r\n".join(head).encode() + b"\r\n\r\n",
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".encode(),
        human.encode(),
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n".encode(),
        status.encode(),
        f"\r\n--{boundary}\r\nContent-Type: {headers_type}\r\n\r\n".encode(),
        headers + b"\r\n",
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)
