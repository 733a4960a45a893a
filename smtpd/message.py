"""Byte-level changes the SMTP layer makes to a received message (pure functions, no I/O).

The raw bytes are otherwise stored exactly as received, so these functions only touch the header block and
never re-serialise anything else.
"""

from __future__ import annotations

import datetime
import re
import secrets
from email.utils import format_datetime

# Field-level reads and edits of the header block live in mailcore; the SMTP layer uses them from here too.
from mailcore.fields import count_fields, field_values, has_field, header_end, remove_field

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")


def normalise_line_endings(data: bytes) -> bytes:
    """Bare CR and bare LF become CRLF, so a message can never contain a line ending another server reads
    differently (SMTP smuggling: a bare-LF "." line must never end or split a message)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") == crlf and data.count(b"\n") == crlf:
        return data  # the common case, decided by three C-speed scans
    return _LINE_ENDINGS.sub(b"\r\n", data)


def new_message_id(hostname: str) -> bytes:
    return f"<{secrets.token_hex(16)}@{hostname}>".encode("ascii")


def date_value(now: datetime.datetime | None = None) -> bytes:
    return format_datetime(now or datetime.datetime.now(datetime.UTC)).encode("ascii")


def _printable(text: str, limit: int = 200) -> str:
    """Client-supplied text made safe for a header: printable characters only, bounded."""
    return "".join(ch if ch.isprintable() and ch not in "()" else "?" for ch in text)[:limit] or "unknown"


def received_field(
    *,
    helo: str,
    ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipients: list[str],
    tls_version: str | None = None,
    now: datetime.datetime | None = None,
) -> bytes:
    """The Received trace field (RFC 5321 4.4); "for" names the recipient only when there is exactly one."""
    lines = [f"Received: from {_printable(helo)} ([{ip}])", f"\tby {hostname} (Mailsite) with {protocol}"]
    if tls_version:
        lines[-1] += f" ({tls_version})"
    lines[-1] += f" id {queue_id}"
    if len(recipients) == 1:
        lines.append(f"\tfor <{_printable(recipients[0], 320)}>")
    lines[-1] += "; " + date_value(now).decode("ascii")
    return "\r\n".join(lines).encode("utf-8") + b"\r\n"


def new_queue_id() -> str:
    return secrets.token_hex(6).upper()


__all__ = [
    "count_fields",
    "date_value",
    "field_values",
    "has_field",
    "header_end",
    "new_message_id",
    "new_queue_id",
    "normalise_line_endings",
    "received_field",
    "remove_field",
]
