"""Byte-level changes the SMTP layer makes to a received message (pure functions, no I/O).

The raw bytes are otherwise stored exactly as received, so these functions only touch the header block and
never re-serialise anything else.
"""

from __future__ import annotations

import datetime
import re
import secrets
from email.utils import format_datetime

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")


def normalise_line_endings(data: bytes) -> bytes:
    """Bare CR and bare LF become CRLF, so a message can never contain a line ending another server reads
    differently (SMTP smuggling: a bare-LF "." line must never end or split a message)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") == crlf and data.count(b"\n") == crlf:
        return data  # the common case, decided by three C-speed scans
    return _LINE_ENDINGS.sub(b"\r\n", data)


def header_end(raw: bytes) -> int:
    """Offset just past the header block's last line (the empty line starts here); len(raw) if none."""
    if raw.startswith(b"\r\n"):
        return 0
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 2


def _field_pattern(name: bytes) -> re.Pattern[bytes]:
    # A field: its name line plus folded continuation lines (RFC 5322 2.2.3).
    return re.compile(rb"(?im)^" + re.escape(name) + rb"[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*(?:\r\n|$)")


def count_fields(raw: bytes, name: bytes) -> int:
    return len(_field_pattern(name).findall(raw, 0, header_end(raw)))


def has_field(raw: bytes, name: bytes) -> bool:
    return _field_pattern(name).search(raw, 0, header_end(raw)) is not None


def field_values(raw: bytes, name: bytes) -> list[bytes]:
    """The unfolded values of every `name` field in the header block."""
    values = []
    for match in _field_pattern(name).finditer(raw, 0, header_end(raw)):
        value = match.group(0).split(b":", 1)[1]
        values.append(re.sub(rb"\r\n([ \t])", rb"\1", value).strip())
    return values


def remove_field(raw: bytes, name: bytes) -> bytes:
    """The message without any `name` field (with its continuation lines); the body is untouched."""
    end = header_end(raw)
    head = _field_pattern(name).sub(b"", raw[:end])
    return head + raw[end:]


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
