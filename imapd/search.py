"""SEARCH keys (RFC 3501 6.4.4) compiled to one Django Q object, so a search is one indexed query.

Flags, UIDs, dates and sizes are columns. Address, subject and text keys match the header columns and the
decoded text stored at delivery (case-insensitive substring, as RFC 3501 asks). HEADER with a field that has
no column matches the raw header lines of the message with a regular expression in PostgreSQL.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from imapd import sequence
from imapd.protocol import Atom, ParseError, Token, astring
from mailboxes.models import Message, MessageBody

_FLAG_KEYS = {
    "ANSWERED": ("answered", True),
    "DELETED": ("deleted", True),
    "DRAFT": ("draft", True),
    "FLAGGED": ("flagged", True),
    "SEEN": ("seen", True),
    "UNANSWERED": ("answered", False),
    "UNDELETED": ("deleted", False),
    "UNDRAFT": ("draft", False),
    "UNFLAGGED": ("flagged", False),
    "UNSEEN": ("seen", False),
}
_SYSTEM_KEYWORDS = {"\\SEEN": "seen", "\\ANSWERED": "answered", "\\FLAGGED": "flagged", "\\DELETED": "deleted"}
_SYSTEM_KEYWORDS["\\DRAFT"] = "draft"
_HEADER_COLUMNS = {
    "subject": ("subject",),
    "from": ("from_name", "from_address"),
    "to": ("to_addresses",),
    "cc": ("cc_addresses",),
    "bcc": ("bcc_addresses",),
    "message-id": ("message_id",),
    "in-reply-to": ("in_reply_to",),
    "references": ("references",),
}
_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})\Z")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")
CHARSETS = ("UTF-8", "US-ASCII")


class BadCharset(ParseError):
    pass


@dataclass
class Context:
    mailbox_id: int
    uids: Sequence[int]  # the session's view, ascending
    recent: set[int]  # UIDs \Recent in this session


def _day(token: Token) -> datetime.datetime:
    text = astring(token)
    match = _DATE.match(text)
    if match is None or match[2].lower() not in _MONTHS:
        raise ParseError(f"Invalid date {text!r} (expected e.g. 1-Feb-2024)")
    try:
        day = datetime.date(int(match[3]), _MONTHS.index(match[2].lower()) + 1, int(match[1]))
    except ValueError:
        raise ParseError(f"Invalid date {text!r}") from None
    # RFC 3501 6.4.4: dates disregard time and timezone; days are taken in UTC.
    return datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)


def _date_q(column: str, key: str, token: Token) -> Q:
    start = _day(token)
    end = start + datetime.timedelta(days=1)
    if key.endswith("BEFORE"):
        return Q(**{f"{column}__lt": start})
    if key.endswith("ON"):
        return Q(**{f"{column}__gte": start, f"{column}__lt": end})
    return Q(**{f"{column}__gte": start})


def _contains(columns: Sequence[str], text: str) -> Q:
    q = Q(pk__in=[])
    for column in columns:
        q |= Q(**{f"{column}__icontains": text})
    return q


def _header(context: Context, name: str, value: str) -> Q:
    if not _FIELD_NAME.match(name):
        raise ParseError(f"Invalid header field name {name!r}")
    columns = _HEADER_COLUMNS.get(name.lower())
    if columns:
        return _contains(columns, value) if value else Q(pk__isnull=False)
    if connection.vendor != "postgresql":
        raise ParseError("HEADER searches on this field need PostgreSQL")
    # The field at the start of a line, then (on the same logical line) the value; escape-encoding keeps line
    # breaks and printable bytes as they are.
    pattern = rf"(^|\n){re.escape(name)}[ \t]*:[^\n]*{re.escape(value)}"
    body_table = MessageBody._meta.db_table
    message_table = Message._meta.db_table
    return Q(
        pk__in=RawSQL(
            f"SELECT m.id FROM {message_table} m JOIN {body_table} b ON b.id = m.body_id "
            f"WHERE m.mailbox_id = %s AND encode(b.raw, 'escape') ~* %s",
            [context.mailbox_id, pattern],
        )
    )


class _Parser:
    def __init__(self, tokens: list[Token], context: Context, by_uid: bool) -> None:
        self.tokens = tokens
        self.pos = 0
        self.context = context
        self.by_uid = by_uid

    def take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise ParseError("Missing search argument")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def take_string(self) -> str:
        return astring(self.take())

    def keys(self, tokens: list[Token]) -> Q:
        saved = self.tokens, self.pos
        self.tokens, self.pos = tokens, 0
        q = Q()
        while self.pos < len(self.tokens):
            q &= self.key()
        self.tokens, self.pos = saved
        return q

    def key(self) -> Q:
        token = self.take()
        if isinstance(token, list):
            if not token:
                raise ParseError("Empty search key list")
            return self.keys(token)
        if not isinstance(token, Atom):
            raise ParseError("Expected a search key")
        key = token.upper()
        context = self.context
        if key in _FLAG_KEYS:
            column, value = _FLAG_KEYS[key]
            return Q(**{column: value})
        if key == "ALL":
            return Q()
        if key == "RECENT":
            return Q(uid__in=sorted(context.recent))
        if key == "NEW":
            return Q(uid__in=sorted(context.recent), seen=False)
        if key == "OLD":
            return ~Q(uid__in=sorted(context.recent))
        if key in ("KEYWORD", "UNKEYWORD"):
            flag = self.take_string()
            column = _SYSTEM_KEYWORDS.get(flag.upper())
            q = Q(**{column: True}) if column else Q(keywords__contains=f" {flag} ")
            return q if key == "KEYWORD" else ~q
        if key in ("BCC", "CC", "FROM", "TO", "SUBJECT"):
            return _contains(_HEADER_COLUMNS[key.lower()], self.take_string())
        if key == "BODY":
            return Q(search_text__icontains=self.take_string())
        if key == "TEXT":
            columns = ("search_text", "subject", "from_name", "from_address", "to_addresses", "cc_addresses")
            return _contains(columns, self.take_string())
        if key == "HEADER":
            name = self.take_string()
            return _header(context, name, self.take_string())
        if key in ("LARGER", "SMALLER"):
            number = self.take()
            if not isinstance(number, Atom) or not number.isdigit():
                raise ParseError(f"{key} needs a number")
            return Q(size__gt=int(number)) if key == "LARGER" else Q(size__lt=int(number))
        if key in ("BEFORE", "ON", "SINCE"):
            return _date_q("internal_date", key, self.take())
        if key in ("SENTBEFORE", "SENTON", "SENTSINCE"):
            return _date_q("sent_date", key, self.take())
        if key == "NOT":
            return ~self.key()
        if key == "OR":
            return self.key() | self.key()
        if key == "UID":
            ranges = sequence.parse(self.take())
            return sequence.uid_q(sequence.uid_ranges(ranges, context.uids, by_uid=True))
        if sequence.is_sequence_set(token):
            ranges = sequence.uid_ranges(sequence.parse(token), context.uids, by_uid=False)
            return sequence.uid_q(ranges)
        raise ParseError(f"Unknown search key {token}")


def compile_search(tokens: list[Token], context: Context, *, by_uid: bool) -> Q:
    """The Q object for a SEARCH command's arguments (an optional CHARSET first)."""
    if tokens and isinstance(tokens[0], Atom) and tokens[0].upper() == "CHARSET":
        if len(tokens) < 2:
            raise ParseError("CHARSET needs a name")
        charset = astring(tokens[1]).upper()
        if charset not in CHARSETS:
            raise BadCharset(charset)
        tokens = tokens[2:]
    if not tokens:
        raise ParseError("SEARCH needs at least one key")
    return _Parser(tokens, context, by_uid).keys(tokens)
