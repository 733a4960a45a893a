"""Fields of a message's header block, read and removed on the raw bytes (RFC 5322 2.2), never re-serialised.

For messages whose lines end in CRLF, as every message is once SMTP has received it or the webmail has built it.
"""

from __future__ import annotations

import functools
import re


def header_end(raw: bytes) -> int:
    """Offset just past the header block's last line (the empty line starts here); len(raw) if none."""
    if raw.startswith(b"\r\n"):
        return 0
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 2


@functools.cache
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
