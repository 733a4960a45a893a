"""Modified UTF-7 for mailbox names (RFC 3501 5.1.3)."""

from __future__ import annotations

import base64
import binascii


class MUTF7Error(ValueError):
    """A mailbox name that is not valid modified UTF-7."""


def _b64_encode(text: str) -> str:
    data = text.encode("utf-16-be")
    return base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    """Printable ASCII stays as is ("&" becomes "&-"); every other run becomes "&<modified base64>-"."""
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            if run:
                out.append("&" + _b64_encode("".join(run)) + "-")
                run = []
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append("&" + _b64_encode("".join(run)) + "-")
    return "".join(out)


def decode(name: str) -> str:
    """Decode and validate: only printable ASCII outside shifts, canonical base64 inside (RFC 3501 5.1.3)."""
    out: list[str] = []
    pos = 0
    while pos < len(name):
        ch = name[pos]
        if not 0x20 <= ord(ch) <= 0x7E:
            raise MUTF7Error("mailbox names must be 7-bit modified UTF-7")
        if ch != "&":
            out.append(ch)
            pos += 1
            continue
        end = name.find("-", pos + 1)
        if end < 0:
            raise MUTF7Error("unterminated modified UTF-7 shift")
        chunk = name[pos + 1 : end]
        pos = end + 1
        if not chunk:
            out.append("&")
            continue
        if not all(c.isalnum() or c in "+," for c in chunk) or len(chunk) % 4 == 1:
            raise MUTF7Error("malformed modified base64")
        try:
            data = base64.b64decode(chunk.replace(",", "/") + "=" * (-len(chunk) % 4), validate=True)
            text = data.decode("utf-16-be")
        except (binascii.Error, UnicodeDecodeError):
            raise MUTF7Error("malformed modified base64") from None
        # A shifted run must not encode printable ASCII, and must be encoded canonically; otherwise two
        # spellings would name one folder.
        if any(0x20 <= ord(c) <= 0x7E for c in text) or _b64_encode(text) != chunk:
            raise MUTF7Error("non-canonical modified UTF-7")
        out.append(text)
    return "".join(out)
