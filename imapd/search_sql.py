"""A parsed SEARCH (`imapd.search_keys`) translated to one Django filter on the folder's messages.

Flags, UIDs, internal dates and sizes are columns. FROM/TO/CC/BCC/SUBJECT and HEADER on those fields match
the decoded header columns stored at delivery (case-insensitive substring, RFC 3501 6.4.4); other HEADER
fields, the header part of TEXT and the presence of a field (HEADER f "") read the stored header bytes. The
Date: header's own day (SENT*) is computed in SQL from the stored date and the zone written in the header.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.backends.signals import connection_created
from django.db.models import Q
from django.db.models.expressions import RawSQL

from imapd import search_keys as k
from imapd import sequence
from imapd.protocol import ParseError
from mailboxes import text_index
from mailboxes.models import Message, MessageBody

_SYSTEM_KEYWORDS = {"\\seen": "seen", "\\answered": "answered", "\\flagged": "flagged", "\\deleted": "deleted"}
_SYSTEM_KEYWORDS["\\draft"] = "draft"
# Decoded columns holding a field's content, and the envelope JSON key present exactly when the field is.
_HEADER_COLUMNS = {
    "subject": (("subject",), "s"),
    "from": (("from_name", "from_address"), "f"),
    "to": (("to_addresses",), "t"),
    "cc": (("cc_addresses",), "c"),
    "bcc": (("bcc_addresses",), "b"),
    "message-id": (("message_id",), "m"),
    "in-reply-to": (("in_reply_to",), "i"),
    "date": ((), "d"),
}
_TEXT_COLUMNS = text_index.COLUMNS  # what TEXT reads besides the header bytes, as the index holds it
_NOTHING = Q(pk__in=[])
_EVERYTHING = Q(pk__isnull=False)  # not Q(), whose negation is also empty and so matches everything
_MESSAGES = Message._meta.db_table
_BODIES = MessageBody._meta.db_table
# The header block of a message's stored bytes: up to the body of the root part (mailcore.mime.MimePart).
_PG_HEADER = "substring(b.raw from 1 for (m.structure->'o'->>2)::int)"
# The same, read for one message at a time where only some messages need it.
_PG_HEADER_ALONE = (
    f"substring((SELECT b.raw FROM {_BODIES} b WHERE b.id = m.body_id) from 1 for (m.structure->'o'->>2)::int)"
)
# RFC 5322 3.3: the zone ends the date (a comment may follow); RFC 5322 4.3 obsolete zone names.
_PG_ZONE = r"substring(m.envelope->>'d' from '([+-][0-9]{4})\s*(?:\([^()]*\)\s*)?$')"
_OBSOLETE_ZONES = {"EDT": -240, "EST": -300, "CDT": -300, "CST": -360, "MDT": -360, "MST": -420, "PDT": -420}
_OBSOLETE_ZONES["PST"] = -480
_PG_SENT_DAY = (
    "((m.sent_date AT TIME ZONE 'UTC') + make_interval(mins => COALESCE("
    "(substr(z.zone, 1, 1) || '1')::int * (substr(z.zone, 2, 2)::int * 60 + substr(z.zone, 4, 2)::int), "
    r"CASE upper(substring(m.envelope->>'d' from '([A-Za-z]+)\s*$')) "
    + " ".join(f"WHEN '{name}' THEN {minutes}" for name, minutes in _OBSOLETE_ZONES.items())
    + " ELSE 0 END)))::date"
)
_ZONE = re.compile(r"([+-])(\d\d)(\d\d)\s*(?:\([^()]*\)\s*)?\Z")
_ZONE_NAME = re.compile(r"([A-Za-z]+)\s*\Z")


def _sqlite_sent_day(sent: str | None, header: str | None, internal: str) -> str:
    """SQLite's version of _PG_SENT_DAY: the Date: header's day in its own zone, else the internal date's."""
    if sent is None:
        return datetime.datetime.fromisoformat(internal).date().isoformat()
    minutes = 0
    if header and (numeric := _ZONE.search(header)):
        minutes = (int(numeric[2]) * 60 + int(numeric[3])) * (-1 if numeric[1] == "-" else 1)
    elif header and (named := _ZONE_NAME.search(header)):
        minutes = _OBSOLETE_ZONES.get(named[1].upper(), 0)
    moment = datetime.datetime.fromisoformat(sent).replace(tzinfo=None)
    return (moment + datetime.timedelta(minutes=minutes)).date().isoformat()


def _register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("imap_sent_day", 3, _sqlite_sent_day, deterministic=True)


connection_created.connect(_register_sqlite_functions)
_RELATIONS = {"before": "<", "on": "=", "since": ">="}


@dataclass
class Context:
    mailbox_id: int
    uids: Sequence[int]  # the session's view, ascending
    recent: set[int]  # UIDs \Recent in this session
    saved: Sequence[int] | None = None  # the SEARCHRES result ("$"), None when none was saved


def uid_q(ranges: list[tuple[int, int]]) -> Q:
    """A filter for messages with UIDs in these ranges (single UIDs folded into one IN list)."""
    singles = [low for low, high in ranges if low == high]
    q = Q(uid__among=singles) if singles else _NOTHING
    for low, high in ranges:
        if low != high:
            q |= Q(uid__gte=low, uid__lte=high)
    return q


def _contains(columns: Sequence[str], text: str) -> Q:
    q = _NOTHING
    for column in columns:
        q |= Q(**{f"{column}__icontains": text})
    return q


def _matching(mailbox_id: int, condition: str, params: list[object], *, body: bool = True) -> Q:
    """Messages of the folder for which an SQL condition on m (the message) and b (its body) holds."""
    join = f" JOIN {_BODIES} b ON b.id = m.body_id" if body else ""
    zone = f" CROSS JOIN LATERAL (SELECT {_PG_ZONE} AS zone) z" if "z.zone" in condition else ""
    sql = f"SELECT m.id FROM {_MESSAGES} m{join}{zone} WHERE m.mailbox_id = %s AND {condition}"
    return Q(pk__in=RawSQL(sql, [mailbox_id, *params]))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _raw_header_contains(mailbox_id: int, text: str) -> Q:
    if connection.vendor == "postgresql":
        # escape-encoding keeps printable ASCII as it is; 8-bit text is matched by the decoded columns.
        return _matching(mailbox_id, f"encode({_PG_HEADER}, 'escape') ILIKE %s", [f"%{_like_escape(text)}%"])
    header = "substr(b.raw, 1, json_extract(m.structure, '$.o[2]'))"
    return _matching(mailbox_id, f"instr(lower(CAST({header} AS TEXT)), lower(%s)) > 0", [text])


def _narrowed(context: Context, text: str, columns: Sequence[str], *, header: bool) -> Q | None:
    """The messages whose columns (or header bytes) contain `text`, read only where the trigram index
    (mailboxes.text_index) leaves candidates; None where it cannot narrow. The comparisons are the scan's:
    Django's icontains on PostgreSQL (UPPER, LIKE) and _raw_header_contains's ILIKE, on the same pattern. For
    TEXT (`header`) with an `exact` string, the index's rows are the answer for the messages it holds."""
    answers = header and text_index.exact(text)
    found = text_index.candidates(context.mailbox_id, text, folder_size=len(context.uids), answers=answers)
    if found is None:
        return None
    tests = [f'UPPER(m."{column}"::text) LIKE UPPER(%s)' for column in columns]
    if header:
        tests.append(f"encode({_PG_HEADER}, 'escape') ILIKE %s")
    patterns = [f"%{_like_escape(text)}%"] * len(tests)
    if found.ids is None:
        # The messages the index finds (in any of the account's folders: the caller keeps this folder's), and
        # those above the mark read as the scan reads them; the folder's other messages are not read at all.
        indexed, indexed_params = text_index.matches(found.account_id, text)
        tests[-1] = f"encode({_PG_HEADER_ALONE}, 'escape') ILIKE %s"
        sql = (
            f"{indexed} UNION ALL SELECT m.id FROM {_MESSAGES} m WHERE m.mailbox_id = %s AND m.uid > %s "
            f"AND ({' OR '.join(tests)})"
        )
        return Q(pk__in=RawSQL(sql, [*indexed_params, context.mailbox_id, found.mark, *patterns]))
    condition = f"(m.id = ANY(%s) OR m.uid > %s) AND ({' OR '.join(tests)})"
    return _matching(context.mailbox_id, condition, [found.ids, found.mark, *patterns], body=header)


def _text(context: Context, text: str) -> Q:
    narrowed = _narrowed(context, text, _TEXT_COLUMNS, header=True)
    if narrowed is not None:
        return narrowed
    return _contains(_TEXT_COLUMNS, text) | _raw_header_contains(context.mailbox_id, text)


def _body(context: Context, text: str) -> Q:
    narrowed = _narrowed(context, text, ("search_text",), header=False)
    return Q(search_text__icontains=text) if narrowed is None else narrowed


def _header_field(mailbox_id: int, name: str, value: str) -> Q:
    """HEADER on a field without a column: the field's (possibly folded) line contains value."""
    if connection.vendor != "postgresql":
        raise ParseError("HEADER searches on this field need PostgreSQL")
    # The field at the start of a line, then on its logical line (RFC 5322 2.2.3 folding) the value.
    pattern = rf"(^|\n){re.escape(name)}[ \t]*:([^\n]|\n[ \t])*{re.escape(value)}"
    return _matching(mailbox_id, f"encode({_PG_HEADER}, 'escape') ~* %s", [pattern])


def _header(context: Context, key: k.Header) -> Q:
    columns, present_key = _HEADER_COLUMNS.get(key.field, ((), None))
    if not key.value:
        # RFC 3501 6.4.4: an empty string matches every message that has the field.
        if present_key is not None:
            return Q(envelope__has_key=present_key)
        return _header_field(context.mailbox_id, key.field, "")
    if columns:
        return _contains(columns, key.value)
    return _header_field(context.mailbox_id, key.field, key.value)


def _date(context: Context, key: k.Date) -> Q:
    if not key.sent:
        # The internal date's day, disregarding time (RFC 3501 6.4.4); days are taken in UTC.
        start = datetime.datetime.combine(key.day, datetime.time(), tzinfo=datetime.UTC)
        end = start + datetime.timedelta(days=1)
        if key.relation == "before":
            return Q(internal_date__lt=start)
        if key.relation == "on":
            return Q(internal_date__gte=start, internal_date__lt=end)
        return Q(internal_date__gte=start)
    # The Date: header's day in the zone it is written in; without a Date: header, the internal date's day.
    operator = _RELATIONS[key.relation]
    if connection.vendor == "postgresql":
        day = f"COALESCE({_PG_SENT_DAY}, (m.internal_date AT TIME ZONE 'UTC')::date)"
    else:
        day = "imap_sent_day(m.sent_date, json_extract(m.envelope, '$.d'), m.internal_date)"
    return _matching(context.mailbox_id, f"{day} {operator} %s", [key.day], body=False)


def to_q(key: k.Key, context: Context) -> Q:
    """The filter selecting the messages that match `key` (nesting is bounded by the parser)."""
    if isinstance(key, k.All):
        return _EVERYTHING
    if isinstance(key, k.And):
        q = to_q(key.keys[0], context)
        for part in key.keys[1:]:
            q &= to_q(part, context)
        return q
    if isinstance(key, k.Or):
        return to_q(key.left, context) | to_q(key.right, context)
    if isinstance(key, k.Not):
        return ~to_q(key.key, context)
    if isinstance(key, k.Flag):
        return Q(**{key.name: key.on})
    if isinstance(key, k.Keyword):
        column = _SYSTEM_KEYWORDS.get(key.flag.lower())
        return Q(**{column: True}) if column else Q(keywords__contains=f" {key.flag} ")
    if isinstance(key, k.Recent):
        return Q(uid__among=sorted(context.recent))
    if isinstance(key, k.Header):
        return _header(context, key)
    if isinstance(key, k.Body):
        return _body(context, key.value)
    if isinstance(key, k.Text):
        return _text(context, key.value)
    if isinstance(key, k.Size):
        return Q(size__gt=key.octets) if key.larger else Q(size__lt=key.octets)
    if isinstance(key, k.Date):
        return _date(context, key)
    if isinstance(key, k.Messages):
        return uid_q(sequence.uid_ranges(list(key.ranges), context.uids, by_uid=key.by_uid))
    if isinstance(key, k.Saved):
        # RFC 5182 2.1: "$" with nothing saved is an empty set.
        return Q(uid__among=list(context.saved)) if context.saved else _NOTHING
    if isinstance(key, k.ModSeq):
        return Q(modseq__gte=key.modseq)
    raise TypeError(f"unknown search key {key!r}")
