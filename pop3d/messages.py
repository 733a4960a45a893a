"""Message bytes as POP3 sends them: CRLF line endings, byte-stuffed, cut for TOP.

RFC 1939 3 counts sizes in octets "as if" every line ended in CRLF, and the scan listing (LIST, STAT) must equal
what RETR sends before byte-stuffing. Mail stored by SMTP delivery is CRLF already; a message APPENDed over IMAP
with bare LF line endings is converted here; its size after conversion is `Message.crlf_size`, computed when it
was stored.
"""

from __future__ import annotations

import re

from mailcore.crlf import to_crlf

__all__ = ["multiline", "to_crlf", "top"]

_DOT_AFTER_LF = re.compile(rb"\n\.")  # every CRLF. is one; a bare LF. finds nothing for replace to change


def multiline(data: bytes) -> bytes:
    """A multi-line response body (RFC 1939 3): dot-stuffed and ended by the termination line.

    A message whose last line lacks CRLF gets one before the terminator: the terminator must start a line.
    """
    # Most messages have no line starting with a dot: a regular expression search says so in less time than
    # replace takes to find nothing (a fifth to four fifths of it on 20 KB of text, HTML, base64 or headers).
    stuffed = data.replace(b"\r\n.", b"\r\n..") if _DOT_AFTER_LF.search(data) else data
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if stuffed and not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def top(data: bytes, lines: int) -> bytes:
    """The header, the blank line after it and the first `lines` body lines of a CRLF message (RFC 1939 7 TOP).

    A message without a blank line is all header. `data` must already be CRLF (see `to_crlf`).
    """
    if data.startswith(b"\r\n"):
        body_start = 2  # no header fields at all: the blank line is the first line
    else:
        blank = data.find(b"\r\n\r\n")
        if blank < 0:
            return data
        body_start = blank + 4
    end = body_start
    for _ in range(lines):
        next_end = data.find(b"\r\n", end)
        if next_end < 0:
            return data
        end = next_end + 2
    return data[:end]
