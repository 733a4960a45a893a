"""Line endings: mail travels with CRLF (RFC 5322 2.3), but APPENDed messages may come with bare LF."""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r?\n")


def to_crlf(raw: bytes) -> bytes:
    """`raw` with every bare LF turned into CRLF (the common, already-CRLF case returns `raw` unchanged)."""
    if raw.count(b"\n") == raw.count(b"\r\n"):
        return raw
    return _LINE_END.sub(b"\r\n", raw)


def crlf_size(raw: bytes) -> int:
    """The length of `to_crlf(raw)`, without building it."""
    return len(raw) + raw.count(b"\n") - raw.count(b"\r\n")
