"""What every transfer format carries besides the bytes: IMAP flags, keywords and the internal date."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

SYSTEM = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


@dataclass
class Item:
    """One message read from (or written to) an archive."""

    raw: bytes
    flags: list[str] = field(default_factory=list)  # IMAP spelling: system flags ("\\Seen") and keywords
    internal_date: datetime.datetime | None = None  # timezone-aware; None when the archive gives none
    sender: str = ""  # envelope sender, where the format keeps one (mbox From_ line)


@dataclass(frozen=True)
class Skipped:
    """Something in an archive that was not imported, and why."""

    where: str  # a file name, or a file and the byte offset of the message
    reason: str


# A keyword is an IMAP atom (RFC 3501 9: no controls, space or atom-specials, 7-bit); anything else in an
# archive or a server's answer could not be sent back in FLAGS, so it is left out.
_KEYWORD = re.compile(r"[!#$&\'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")


def normalise(flags: list[str]) -> list[str]:
    """System flags in their canonical spelling, then keywords, each once; \\Recent is never carried, nor a
    keyword that is not an IMAP atom."""
    lowered = {flag.lower() for flag in flags}
    system = [name for name in SYSTEM if name.lower() in lowered]
    keywords: list[str] = []
    for flag in flags:
        if _KEYWORD.fullmatch(flag) and flag not in keywords:
            keywords.append(flag)
    return system + keywords
