"""Search operators as users type them (Gmail's spelling), parsed without the database.

`from:ann subject:"budget 2025" filename:pdf has:attachment is:unread after:2025-01-31 in:archive invoice` is split into
filters on the list columns and the remaining free text, which goes to the full-text index. A value with spaces
is quoted; an unknown `word:value` is plain text; an operator with a value it cannot use is reported, not
guessed at.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

# A token: an operator with a quoted or bare value, a quoted phrase (kept with its quotes for the text search),
# or a bare word.
_TOKEN = re.compile(r'(?P<op>[a-z]+):(?:"(?P<quoted>[^"]*)"|(?P<bare>\S*))|(?P<phrase>-?"[^"]*"?)|(?P<word>\S+)', re.I)
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
OPERATORS = ("from", "to", "subject", "filename", "has", "in", "is", "before", "after")


@dataclass
class Terms:
    text: str = ""  # what is left for the full-text search
    senders: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    filenames: list[str] = field(default_factory=list)  # a part of an attachment's name (or its type: "pdf")
    has_attachment: bool | None = None
    folder: str | None = None  # a folder name or special-use role; "all" searches every folder
    unread: bool | None = None
    starred: bool | None = None
    before: datetime.date | None = None  # strictly before this day
    after: datetime.date | None = None  # on this day or later
    problems: list[str] = field(default_factory=list)

    @property
    def has_filters(self) -> bool:
        return bool(
            self.senders
            or self.recipients
            or self.subjects
            or self.filenames
            or self.folder is not None
            or self.before
            or self.after
            or any(flag is not None for flag in (self.has_attachment, self.unread, self.starred))
        )


def _date(value: str) -> datetime.date | None:
    match = _DATE.match(value)
    if match is None:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse(query: str) -> Terms:
    terms = Terms()
    words: list[str] = []
    for match in _TOKEN.finditer(query):
        operator = (match["op"] or "").lower()
        if not operator or operator not in OPERATORS:
            words.append(match[0])
            continue
        value = (match["quoted"] if match["quoted"] is not None else match["bare"] or "").strip()
        if not value:
            terms.problems.append(f"{operator}: needs a value")
            continue
        lowered = value.lower()
        if operator == "from":
            terms.senders.append(value)
        elif operator == "to":
            terms.recipients.append(value)
        elif operator == "subject":
            terms.subjects.append(value)
        elif operator == "filename":
            terms.filenames.append(value)
        elif operator == "in":
            terms.folder = "all" if lowered in ("all", "anywhere", "everywhere") else value
        elif operator == "has" and lowered in ("attachment", "attachments"):
            terms.has_attachment = True
        elif operator == "is" and lowered in ("unread", "read"):
            terms.unread = lowered == "unread"
        elif operator == "is" and lowered in ("starred", "flagged", "unstarred"):
            terms.starred = lowered != "unstarred"
        elif operator in ("before", "after") and _date(value) is not None:
            setattr(terms, operator, _date(value))
        else:
            terms.problems.append(f"{operator}:{value} is not understood")
    terms.text = " ".join(words)
    return terms
