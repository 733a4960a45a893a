"""xtext (RFC 3461 4): how DSN parameters carry text in the SMTP envelope.

xtext = *( xchar / hexchar )
xchar = any ASCII character from "!" (33) to "~" (126), except "+" and "="
hexchar = "+" followed by two upper-case hexadecimal digits
"""

from __future__ import annotations

import re

_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*")
_HEXCHAR = re.compile(r"\+([0-9A-F]{2})")


def decode(value: str) -> str | None:
    """The text `value` encodes, or None when it is not xtext or does not decode to printable US-ASCII (RFC 3461
    4.2 and 4.4 allow nothing else in ORCPT and ENVID)."""
    if not _XTEXT.fullmatch(value):
        return None
    text = _HEXCHAR.sub(lambda match: chr(int(match.group(1), 16)), value)
    if not all(" " <= char <= "~" for char in text):
        return None
    return text


def encode(text: str) -> str:
    """`text` as xtext: "+", "=", and characters outside "!".."~" as "+XX"."""
    return "".join(char if "!" <= char <= "~" and char not in "+=" else f"+{ord(char):02X}" for char in text)
