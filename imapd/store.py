"""What an IMAP session reads from the store, one function per protocol step (each runs in a database
thread through `asyncdb.call`). Steps that also change mail state do so through `mailboxes.actions`."""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import IntegrityError, connection
from django.db.models import Count, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from imapd import ordering, search_keys, search_sql, sequence, views
from imapd.fetch import MessageData, Request, decoded_content, header_section, section_bytes
from imapd.listing import SPECIAL_USE
from imapd.search_sql import uid_q
from mailboxes import actions, binary_rows, uid_ranges
from mailboxes.actions import counters
from mailboxes.actions.folders import claim_recent
from mailboxes.models import Account, ExpungedMessage, Mailbox, Message, MessageBody, RecentMark, Subscription
from mailcore import downgrade
from mailcore.mime import MimePart

_FLAG_COLUMNS = ("seen", "answered", "flagged", "deleted", "draft")
_FLAG_NAMES = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


# The system flags of every combination of the five columns, so a message's are one lookup (FETCH of 10,000).
_SYSTEM_FLAGS = {
    on: [name for name, set_ in zip(_FLAG_NAMES, on, strict=True) if set_]
    for on in itertools.product((False, True), repeat=len(_FLAG_NAMES))
}


def flags_of(seen: bool, answered: bool, flagged: bool, deleted: bool, draft: bool, keywords: str) -> list[str]:
    names = _SYSTEM_FLAGS[seen, answered, flagged, deleted, draft]
    return names + keywords.split() if keywords else names.copy()


@dataclass
class Snapshot:
    """A folder as SELECT/EXAMINE sees it."""

    mailbox_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    uids: array[int]  # 4 bytes a UID: a session keeps its folder's UIDs for as long as it is selected
    keywords: list[str]
    first_unseen_uid: int | None
    first_recent_uid: int  # UIDs from here on are \\Recent to this session
    attributes: list[str] | None = None  # LIST attributes of the folder, when asked for (IMAP4rev2 SELECT)
    # With SELECT (QRESYNC ...) and a matching UIDVALIDITY (RFC 7162 3.2.5): what changed since the client's
    # mod-sequence.
    vanished: list[tuple[int, int]] = field(default_factory=list)  # UID ranges
    changed: list[tuple[int, int, list[str]]] = field(default_factory=list)  # (uid, modseq, flags)


@dataclass(frozen=True)
class Resync:
    """The QRESYNC parameter of SELECT: what the client knows of the folder."""

    uidvalidity: int
    modseq: int
    known_uids: list[tuple[int, int]] | None  # as parsed (sequence.STAR for "*"), None: all


# The UIDs as one string of 4-byte big-endian integers, read from the (mailbox, uid) index: no Python object
# per message. Ordered by the subquery, which an index scan returns sorted, rather than by string_agg's own
# ORDER BY, which sorts again (on disk beyond work_mem: a third of a 100,000-message resync). PostgreSQL
# aggregates a sorted subquery's rows in its order (documented under "Aggregate Functions").
_UIDS_SQL = (
    f"SELECT string_agg(uid_bytes, '') FROM (SELECT int4send(uid::int) AS uid_bytes "
    f"FROM {Message._meta.db_table} WHERE mailbox_id = %s ORDER BY uid) AS uids"
)


def _uids(mailbox_id: int) -> array[int]:
    """The folder's UIDs, ascending."""
    uids: array[int] = array("I")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_UIDS_SQL, [mailbox_id])
            (packed,) = cursor.fetchone()
        if packed:
            uids.frombytes(bytes(packed))
            if sys.byteorder == "little":
                uids.byteswap()
    else:
        uids.extend(Message.objects.filter(mailbox_id=mailbox_id).order_by("uid").values_list("uid", flat=True))
    return uids


def _current_uids(mailbox_id: int, kept: views.View | None, modseq: int) -> tuple[array[int], int]:
    """The folder's UIDs ascending, and the mod-sequence they are known at (`modseq`, read from the folder's row
    just before, or later): from the view this process kept and what changed since, or read whole."""
    if kept is not None and kept.modseq <= modseq:
        found = changes_since(mailbox_id, kept.modseq, kept.uids, take_recent=False)
        if not found.folder_gone:
            uids = views.without(array("I", kept.uids), {uid for uid, _ in found.gone})  # shared: changed as a copy
            uids.extend(found.new)
            return uids, found.highestmodseq
    return _uids(mailbox_id), modseq


class _Folder(NamedTuple):
    """What SELECT and APPEND read of a folder's row."""

    pk: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    first_recent_uid: int
    unseen_count: int
    role: str


# Fixed statements rather than querysets built and compiled per SELECT and APPEND: building and compiling the
# folder's read alone took two thirds as much Python time as the APPEND action itself (py-spy, the IMAP mix).
# \\Recent's mark is a row of its own (RecentMark; none: 1).
_RECENT_MARK = f"COALESCE((SELECT first_uid FROM {RecentMark._meta.db_table} WHERE mailbox_id = f.id), 1)"
_FOLDER_COLUMNS = {"pk": "f.id", "first_recent_uid": _RECENT_MARK}
_FOLDER_SQL = (
    f"SELECT {', '.join(_FOLDER_COLUMNS.get(name, f'f.{name}') for name in _Folder._fields)} "
    f"FROM {Mailbox._meta.db_table} f WHERE f.account_id = %s AND f.name = %s"
)


# From the partial index message_keywords (its condition is the ORM's ~Q(keywords="")).
_KEYWORDS_SQL = f"SELECT DISTINCT keywords FROM {Message._meta.db_table} WHERE mailbox_id = %s AND NOT (keywords = '')"
# From the index message_unseen: one probe.
_FIRST_UNSEEN_SQL = f"SELECT uid FROM {Message._meta.db_table} WHERE mailbox_id = %s AND seen = %s ORDER BY uid LIMIT 1"


def _folder(account_id: int, name: str) -> _Folder | None:
    with connection.cursor() as cursor:
        cursor.execute(_FOLDER_SQL, [account_id, name])
        row = cursor.fetchone()
    return None if row is None else _Folder(*row)


def _scan(mailbox: _Folder) -> views.View:
    """The folder's UIDs ascending, the keywords its messages use, and its first unseen UID: as this process
    kept them while the folder is unchanged (imapd.views)."""
    folder = (mailbox.pk, mailbox.uidvalidity)
    kept = views.known(folder)
    if kept is not None and kept.modseq == mailbox.highestmodseq:
        return kept
    uids, modseq = _current_uids(mailbox.pk, kept, mailbox.highestmodseq)
    with connection.cursor() as cursor:
        cursor.execute(_KEYWORDS_SQL, [mailbox.pk])
        keywords = tuple(sorted({k for (value,) in cursor.fetchall() for k in value.split()}))
        # The folder's row counts its unseen messages: with none, there is no first one to look for.
        first_unseen = None
        if mailbox.unseen_count:
            cursor.execute(_FIRST_UNSEEN_SQL, [mailbox.pk, False])
            row = cursor.fetchone()
            first_unseen = None if row is None else row[0]
    view = views.View(modseq, uids, keywords, first_unseen)
    views.keep(folder, view)
    return view


def open_mailbox(
    account_id: int, name: str, resync: Resync | None = None, *, readonly: bool, attributes: bool = False
) -> Snapshot | None:
    """SELECT/EXAMINE; a read-write SELECT also takes the folder's \\Recent messages for the session. With
    `attributes`, also the folder's LIST attributes (children and special use, as LIST gives them)."""
    mailbox = _folder(account_id, name)
    if mailbox is None:
        return None
    # Before the UIDs are read: a message delivered in between is then found by the session's next check,
    # which claims it too.
    # EXAMINE sees which messages are recent without taking them (RFC 3501 2.3.2); nor does a SELECT when no
    # message is left to take.
    first_recent = mailbox.first_recent_uid
    if not readonly and first_recent < mailbox.uidnext:
        first_recent = claim_recent(mailbox.pk, None)
    view = _scan(mailbox)
    uids = view.uids
    snapshot = Snapshot(
        mailbox_id=mailbox.pk,
        name=mailbox.name,
        uidvalidity=mailbox.uidvalidity,
        # The UIDs may include a message committed since the row was read.
        uidnext=max(mailbox.uidnext, uids[-1] + 1 if uids else 1),
        highestmodseq=mailbox.highestmodseq,
        uids=uids,
        keywords=list(view.keywords),
        first_unseen_uid=view.first_unseen,
        first_recent_uid=first_recent,
    )
    if attributes:
        children = Mailbox.objects.filter(account_id=account_id, name__startswith=mailbox.name + "/").exists()
        snapshot.attributes = ["\\HasChildren" if children else "\\HasNoChildren"]
        if mailbox.role in SPECIAL_USE:
            snapshot.attributes.append(SPECIAL_USE[mailbox.role])
    if resync is not None and resync.uidvalidity == mailbox.uidvalidity:
        known = None
        if resync.known_uids is not None:
            known = sequence.uid_ranges(resync.known_uids, [mailbox.uidnext - 1], by_uid=True)
        snapshot.vanished = vanished(mailbox.pk, known, resync.modseq, uids)
        changed = Message.objects.filter(mailbox_id=mailbox.pk, modseq__gt=resync.modseq).order_by("uid")
        snapshot.changed = [
            (uid, modseq, flags_of(*rest))
            for uid, modseq, *rest in changed.values_list("uid", "modseq", *_FLAG_COLUMNS, "keywords")
        ]
    return snapshot


@dataclass
class Changes:
    """What happened in a folder between a session's mod-sequence and `highestmodseq`."""

    highestmodseq: int
    new: list[int] = field(default_factory=list)  # UIDs above the session's highest, ascending
    recent: list[int] = field(default_factory=list)  # those of `new` that are \\Recent to this session
    flags: list[tuple[int, int, list[str]]] = field(default_factory=list)  # (uid, modseq, flags) of known UIDs
    gone: list[tuple[int, int]] = field(default_factory=list)  # (uid, modseq) of known UIDs expunged, by UID
    folder_gone: bool = False  # the folder was deleted or renamed away
    # `gone` was found by comparing the view with the folder (the expunge log no longer reaches back), so it
    # holds for that view only (imapd.views shares the other answers between sessions).
    from_view: bool = False
    # The last `grown` answer: the UIDs it grew and the array it gave.
    _grown: tuple[array[int], array[int]] | None = field(default=None, repr=False, compare=False)

    def grown(self, uids: array[int]) -> array[int]:
        """`uids`, which the caller shares (imapd.views), followed by the new messages: one new array for all the
        sessions that share these changes and held the same `uids` (a delivery seen by a thousand IDLE sessions
        on one folder), which they share in turn and never change."""
        if self._grown is None or self._grown[0] is not uids:
            extended = array("I", uids)
            extended.extend(self.new)
            self._grown = (uids, extended)
        return self._grown[1]


def _expunges(mailbox_id: int, logged: Q) -> tuple[list[tuple[int, int]], int]:
    """(uid, modseq) of the folder's logged expunges matching `logged`, and the folder's expunge horizon, read
    in one statement: a pruning of the log (mailboxes.actions.expunge_log) is seen in both or in neither."""
    rows = ExpungedMessage.objects.filter(logged, mailbox_id=mailbox_id).order_by().values_list("uid", "modseq")
    # UIDs start at 1: the row with UID 0 is the folder's horizon.
    horizon = Mailbox.objects.filter(pk=mailbox_id).order_by().values_list(Value(0), "expunge_horizon")
    found = list(rows.union(horizon, all=True))
    return [row for row in found if row[0]], max((mod for uid, mod in found if not uid), default=0)


# The folder's row, then its messages changed and its logged expunges (of UIDs up to the view's last) after the
# session's mod-sequence: one statement, so all three come from one snapshot and cost one round trip.
_FOLDER, _CHANGED, _EXPUNGED = 0, 1, 2
_CHANGES_SQL = f"""
    WITH folder AS (
        SELECT highestmodseq, {_RECENT_MARK} AS first_recent_uid, expunge_horizon
        FROM {Mailbox._meta.db_table} f WHERE id = %(folder)s
    )
    SELECT {_FOLDER}, highestmodseq, first_recent_uid, expunge_horizon, NULL, NULL, NULL, NULL, NULL, NULL
    FROM folder
    UNION ALL
    SELECT {_CHANGED}, m.uid, m.modseq, NULL, {", ".join(f"m.{column}" for column in _FLAG_COLUMNS)}, m.keywords
    FROM {Message._meta.db_table} m JOIN folder ON m.modseq <= folder.highestmodseq
    WHERE m.mailbox_id = %(folder)s AND m.modseq > %(modseq)s
    UNION ALL
    SELECT {_EXPUNGED}, e.uid, e.modseq, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM {ExpungedMessage._meta.db_table} e JOIN folder ON e.modseq <= folder.highestmodseq
    WHERE e.mailbox_id = %(folder)s AND e.modseq > %(modseq)s AND e.uid <= %(max_uid)s
    ORDER BY 1, 2
"""


def changes_since(mailbox_id: int, modseq: int, uids: Sequence[int], take_recent: bool) -> Changes:
    """Every change after `modseq` up to the folder's current mod-sequence H, and nothing after H, for a
    session whose view holds `uids` (ascending): a change is committed with the folder row's lock held, so
    all changes up to H are visible once H is (and the statement reads them all in one snapshot)."""
    max_uid = uids[-1] if uids else 0
    with connection.cursor() as cursor:
        cursor.execute(_CHANGES_SQL, {"folder": mailbox_id, "modseq": modseq, "max_uid": max_uid})
        rows = cursor.fetchall()
    if not rows or rows[0][0] != _FOLDER:
        return Changes(modseq, folder_gone=True)
    _, current, first_recent, horizon, *_ = rows[0]
    found = Changes(current)
    if current == modseq:
        return found
    expunged = []
    for kind, uid, mod, _, *rest in rows[1:]:
        if kind == _EXPUNGED:
            expunged.append((uid, mod))
        elif uid > max_uid:
            found.new.append(uid)
        else:
            found.flags.append((uid, mod, flags_of(*rest)))
    if modseq < horizon:
        # The log no longer reaches back to the session's mod-sequence: what of its view is not in the folder.
        present = set(_uids(mailbox_id))
        found.gone = [(uid, horizon) for uid in uids if uid not in present]
        found.from_view = True
    else:
        gone: dict[int, int] = {}
        for uid, mod in expunged:
            gone[uid] = min(mod, gone.get(uid, mod))
        found.gone = sorted(gone.items())
    if found.new and first_recent <= found.new[-1]:
        # Only when some new message may still be unclaimed: most sessions find another took them already.
        first = claim_recent(mailbox_id, found.new[-1] + 1) if take_recent else first_recent
        found.recent = [uid for uid in found.new if uid >= first]
    return found


@dataclass
class Fetched:
    messages: list[MessageData]
    seen_set: set[int]  # UIDs this fetch marked \Seen


def fetch(
    account: Account,
    mailbox_id: int,
    ranges: list[tuple[int, int]],
    max_uid: int,
    request: Request,
    mark_seen: bool,
    changed_since: int | None = None,
) -> Fetched:
    """The messages in `ranges` (up to the session's highest known UID; with CHANGEDSINCE only those changed
    since that mod-sequence), marking them \\Seen first when a non-PEEK body item asks for it (RFC 3501
    6.4.5)."""
    seen_set: set[int] = set()
    if mark_seen:
        messages = Message.objects.filter(uid_q(ranges), mailbox_id=mailbox_id, uid__lte=max_uid)
        if changed_since is not None:
            messages = messages.filter(modseq__gt=changed_since)
        unseen = list(messages.filter(seen=False).values_list("uid", flat=True))
        if unseen:
            changed = actions.set_flags(account, mailbox_id, unseen, ["\\Seen"], actions.FlagMode.ADD)
            seen_set = {m.uid for m in changed}
    # Flags only when FLAGS is asked for or \\Seen set, the date only for INTERNALDATE: a BODY.PEEK[HEADER.FIELDS]
    # of a whole folder has seven columns fewer to read per message.
    flag_columns = [*_FLAG_COLUMNS, "keywords"] if request.needs_flags or mark_seen else []
    dated = "INTERNALDATE" in request.names
    columns = ["uid", "size", "modseq", *(["internal_text"] if dated else []), *flag_columns]
    first_optional = len(columns) - 3
    optional = [
        (name, column)
        for name, column, wanted in (
            ("envelope", "imap_envelope", request.needs_envelope),
            ("bodystructure", "imap_bodystructure", request.needs_bodystructure),
            ("body", "imap_body", request.needs_body),
            ("structure", "structure", request.needs_structure),
            ("raw", "raw", request.needs_raw and not request.header_only),
            ("raw", "raw_header", request.needs_raw and request.header_only),
        )
        if wanted
    ]
    columns += [column for _, column in optional]
    names = [name for name, _ in optional]
    out = []
    statement, params = _fetch_statement(tuple(columns), mailbox_id, ranges, max_uid, changed_since)
    # In binary format on PostgreSQL, where psycopg reads the MIME tree (jsonb) into a dict; SQLite gives its text.
    for uid, size, modseq, *rest in binary_rows.read_statement(statement, params):
        date = rest[0] if dated else ""
        flags = flags_of(*rest[dated : dated + 6]) if flag_columns else []
        data = MessageData(uid, flags, date, size)
        data.modseq = modseq
        for name, value in zip(names, rest[first_optional:], strict=True):
            if name != "structure":
                value = bytes(value)
            elif isinstance(value, str):
                value = json.loads(value)
            setattr(data, name, value)
        if request.downgrade:
            if data.envelope is not None:
                data.envelope = downgrade.envelope(data.envelope)
            if data.bodystructure is not None:
                data.bodystructure = downgrade.body_structure(data.bodystructure)
            if data.body is not None:
                data.body = downgrade.body_structure(data.body)
        if data.raw is not None:
            _cut_sections(data, request)
        out.append(data)
    return Fetched(out, seen_set)


# The internal date as INTERNALDATE writes it, in UTC: loaded as a datetime, by Django's timestamptz loader (pure
# Python), and formatted in Python, it took most of the time of an ENVELOPE fetch. "Mon" is English whatever
# lc_time says (only "TMMon" follows it); fractions of a second are cut, not rounded.
_DAY = f"substr({Message._meta.db_table}.internal_date, 1, 19)"
_INTERNAL_DATE = {
    True: f"to_char({Message._meta.db_table}.internal_date AT TIME ZONE 'UTC', 'DD-Mon-YYYY HH24:MI:SS')",
    False: f"strftime('%%d-', {_DAY}) || substr('JanFebMarAprMayJunJulAugSepOctNovDec', "
    f"strftime('%%m', {_DAY}) * 3 - 2, 3) || strftime('-%%Y %%H:%%M:%%S', {_DAY})",
}
# The stored bytes of a message's header block only (up to the body of its root part), for BODY[HEADER...].
_HEADER_BYTES = {
    True: f"SELECT substring(b.raw from 1 for ({Message._meta.db_table}.structure->'o'->>2)::int) "
    f"FROM {MessageBody._meta.db_table} b WHERE b.id = {Message._meta.db_table}.body_id",
    False: f"SELECT substr(b.raw, 1, json_extract({Message._meta.db_table}.structure, '$.o[2]')) "
    f"FROM {MessageBody._meta.db_table} b WHERE b.id = {Message._meta.db_table}.body_id",
}


_MESSAGES = Message._meta.db_table


def _fetch_statement(
    columns: tuple[str, ...], mailbox_id: int, ranges: list[tuple[int, int]], max_uid: int, changed_since: int | None
) -> tuple[str, list]:
    """FETCH's read of `columns` of the folder's messages in `ranges`, up to the session's highest UID (and changed
    since a mod-sequence). One range (1:*, a page of the folder) is read from the index in UID order; several
    range by range (`uid_ranges`), and PostgreSQL sorts the rows."""
    merged = uid_ranges.merged(ranges)
    single = len(merged) == 1
    params = [mailbox_id, *merged[0]] if single else uid_ranges.parameters(ranges, mailbox_id)
    params += [max_uid] if changed_since is None else [max_uid, changed_since]
    return _fetch_sql(columns, single, changed_since is not None, connection.vendor), params


@functools.cache
def _fetch_sql(columns: tuple[str, ...], single: bool, changed_since: bool, vendor: str) -> str:
    """The statement of `_fetch_statement` for each kind of request (`columns` are the message's own, or the date,
    body or header computed as named here): building and compiling a queryset per FETCH took half the Python time
    of a FETCH of 50 envelopes (py-spy, the IMAP mix)."""
    pg = vendor == "postgresql"
    computed = {
        "internal_text": _INTERNAL_DATE[pg],
        "raw": f"(SELECT b.raw FROM {MessageBody._meta.db_table} b WHERE b.id = {_MESSAGES}.body_id)",
        "raw_header": f"({_HEADER_BYTES[pg]})",
    }
    chosen = ", ".join(computed.get(column, f"{_MESSAGES}.{column}") for column in columns)
    if single:
        messages = f"{_MESSAGES} WHERE {_MESSAGES}.mailbox_id = %s AND {_MESSAGES}.uid BETWEEN %s AND %s AND"
    else:
        messages = f"{uid_ranges.source(_MESSAGES, vendor)} WHERE"
    changed = f" AND {_MESSAGES}.modseq > %s" if changed_since else ""
    return f"SELECT {chosen} FROM {messages} {_MESSAGES}.uid <= %s{changed} ORDER BY {_MESSAGES}.uid"


def vanished(
    mailbox_id: int, ranges: list[tuple[int, int]] | None, modseq: int, folder_uids: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """UID ranges (within `ranges`, when given) expunged from the folder after mod-sequence `modseq` (RFC 7162
    3.2.10, VANISHED (EARLIER)), from the expunge log. When the log was pruned past `modseq`: every UID the
    folder gave out that is not in it (`folder_uids`, or read now), which RFC 7162 3.2.6 allows a server that
    keeps no expunges to answer; the client drops those it has."""
    logged, horizon = _expunges(mailbox_id, Q(modseq__gt=modseq) & (Q() if ranges is None else uid_q(ranges)))
    if modseq >= horizon:
        return sequence.runs(sorted({uid for uid, _ in logged}))
    last = Mailbox.objects.filter(pk=mailbox_id).values_list("uidnext", flat=True).first() or 1
    known = [(1, last - 1)] if ranges is None else ranges
    wanted = [(low, min(high, last - 1)) for low, high in known if low < last]
    return sequence.missing(wanted, _uids(mailbox_id) if folder_uids is None else folder_uids)


def _cut_sections(data: MessageData, request: Request) -> None:
    """The bytes each section item names, cut (and for BINARY decoded) here in the database thread rather
    than on the event loop; the whole message is then dropped, so only what is sent stays in memory."""
    assert data.raw is not None
    # Without the tree (`Request.needs_structure`), every section is the message's own header and `raw` holds
    # just that header block.
    root = None if data.structure is None else MimePart.from_json(data.structure)
    data.decoded, data.sections = {}, {}
    for item in request.items:
        if item.section is None:
            continue
        if item.name in ("BINARY", "BINARY.SIZE"):
            if item.section.part not in data.decoded:
                assert root is not None  # BINARY reads the whole message with its tree
                data.decoded[item.section.part] = decoded_content(data.raw, root, item.section.part)
        elif item.section not in data.sections:
            if root is None:
                section: bytes | None = header_section(data.raw, item.section)
            else:
                section = section_bytes(data.raw, root, item.section)
            if section is not None and request.downgrade and item.section.text.startswith("HEADER"):
                section = downgrade.header(section)
            data.sections[item.section] = section
    data.raw = None
    data.structure = None


def search(context: search_sql.Context, key: search_keys.Key, max_uid: int) -> tuple[list[int], int]:
    """UIDs matching a parsed SEARCH, ascending, up to the session's highest known UID, and the highest
    mod-sequence among them (RFC 7162 3.1.5)."""
    q = search_sql.to_q(key, context)
    messages = Message.objects.filter(q, mailbox_id=context.mailbox_id, uid__lte=max_uid)
    rows = list(messages.order_by("uid").values_list("uid", "modseq"))
    return [uid for uid, _ in rows], max((modseq for _, modseq in rows), default=0)


def _first_mailbox(addresses: list[list[str | None]] | None) -> str:
    """The addr-mailbox of the first address that is not a group marker (RFC 5256 3)."""
    for address in addresses or ():
        if address[-1] is not None:  # the host: None only in group markers (mailcore.mime.EnvelopeAddress)
            return address[-2] or ""
    return ""


def ordering_rows(context: search_sql.Context, key: search_keys.Key, max_uid: int) -> list[ordering.Row]:
    """What SORT and THREAD need of the messages matching `key`, in one query."""
    q = search_sql.to_q(key, context)
    rows = Message.objects.filter(q, mailbox_id=context.mailbox_id, uid__lte=max_uid).values_list(
        "uid", "internal_date", "sent_date", "size", "subject", "envelope", "message_id", "references"
    )
    return [
        ordering.Row(
            uid,
            internal_date,
            sent_date,
            size,
            subject,
            _first_mailbox(envelope.get("f")),
            _first_mailbox(envelope.get("t")),
            _first_mailbox(envelope.get("c")),
            message_id,
            tuple(references.split()),
        )
        for uid, internal_date, sent_date, size, subject, envelope, message_id, references in rows
    ]


def sort(
    context: search_sql.Context, key: search_keys.Key, max_uid: int, criteria: list[tuple[str, bool]]
) -> list[int]:
    """SORT: the matching UIDs in the criteria's order (sorted here, in the database thread, not the loop)."""
    return ordering.sort(ordering_rows(context, key, max_uid), criteria)


def thread(context: search_sql.Context, key: search_keys.Key, max_uid: int, algorithm: str, by_uid: bool) -> bytes:
    """THREAD: the rendered thread lists of the matching messages."""
    rows = ordering_rows(context, key, max_uid)
    threads = ordering.references(rows) if algorithm == "REFERENCES" else ordering.ordered_subject(rows)
    numbers = None if by_uid else {uid: index + 1 for index, uid in enumerate(context.uids)}
    return ordering.render_threads(threads, numbers)


@dataclass
class Stored:
    messages: list[tuple[int, int, list[str]]]  # (uid, modseq, flags) of every message in the set, by UID
    changed: set[int]  # UIDs whose flags this STORE changed
    modified: list[int]  # UIDs left alone because they changed after UNCHANGEDSINCE (RFC 7162 3.1.3)


def store(
    account: Account,
    mailbox_id: int,
    ranges: list[tuple[int, int]],
    max_uid: int,
    flags: list[str],
    mode: str,
    unchanged_since: int | None = None,
) -> Stored:
    """STORE: change flags (with UNCHANGEDSINCE, only of messages not modified since), then read back every
    message in the set for the FETCH replies."""
    if not ranges:
        return Stored([], set(), [])
    if unchanged_since is None:
        # One transaction reads, changes and answers (actions.store_flags).
        flag_mode = actions.FlagMode(mode)
        every, changed_messages = actions.store_flags(account, mailbox_id, ranges, max_uid, flags, flag_mode)
        rows = [
            (m.uid, m.modseq, flags_of(m.seen, m.answered, m.flagged, m.deleted, m.draft, m.keywords)) for m in every
        ]
        return Stored(rows, {m.uid for m in changed_messages}, [])
    messages = Message.objects.filter(uid_q(ranges) & Q(uid__lte=max_uid), mailbox_id=mailbox_id)
    uids = list(messages.values_list("uid", flat=True))
    changed: set[int] = set()
    if uids:
        changed = {
            m.uid
            for m in actions.set_flags(
                account, mailbox_id, uids, flags, actions.FlagMode(mode), unchanged_since=unchanged_since
            )
        }
    rows = [
        (uid, modseq, flags_of(*rest))
        for uid, modseq, *rest in messages.order_by("uid").values_list("uid", "modseq", *_FLAG_COLUMNS, "keywords")
    ]
    modified = [uid for uid, modseq, _ in rows if modseq > unchanged_since and uid not in changed]
    return Stored(rows, changed, modified)


def folder_id(account_id: int, name: str) -> int | None:
    folder = _folder(account_id, name)
    return None if folder is None else folder.pk


def copy(account: Account, mailbox_id: int, ranges: list[tuple[int, int]], max_uid: int, target: str, move: bool):
    """COPY/MOVE to the folder named `target`: (uidvalidity of the target, [(source uid, new uid)]); None when
    the target does not exist."""
    found = _folder(account.pk, target)
    if found is None:
        return None
    target_id = found.pk
    uids = list(
        Message.objects.filter(uid_q(ranges), mailbox_id=mailbox_id, uid__lte=max_uid).values_list("uid", flat=True)
    )
    if move:
        pairs = actions.move(account, mailbox_id, uids, target_id) if uids else []
    else:
        pairs = actions.copy(account, mailbox_id, uids, target_id) if uids else []
    return found.uidvalidity, pairs


def append(
    account: Account, name: str, raw: bytes, flags: list[str], date: datetime.datetime | None
) -> tuple[int, int] | None:
    """APPEND: (uidvalidity, new uid) or None when the folder does not exist."""
    mailbox = _folder(account.pk, name)
    if mailbox is None:
        return None
    message = actions.append(account, mailbox.pk, raw, flags=flags, internal_date=date)
    return mailbox.uidvalidity, message.uid


@dataclass
class Folder:
    name: str
    role: str


@dataclass
class Folders:
    """What LIST and LSUB choose from: the account's folders and the names it subscribed to, folders or not."""

    folders: list[Folder]
    subscribed: list[str]


def folders(account_id: int) -> Folders:
    return Folders(
        [Folder(*row) for row in Mailbox.objects.filter(account_id=account_id).values_list("name", "role")],
        list(Subscription.objects.filter(account_id=account_id).values_list("name", flat=True)),
    )


def statuses(account_id: int, names: Sequence[str]) -> dict[str, dict[str, int]]:
    """STATUS items of the named folders (those that exist), in one query whatever their number: the counts are
    kept in the folders' rows (mailboxes.actions.counters); RECENT counts the messages no session has selected
    the folder since (RFC 3501 2.3.2), from the (mailbox, uid) index, nothing to read when there are none."""
    recent = (
        Message.objects.filter(mailbox_id=OuterRef("pk"), uid__gte=OuterRef("first_recent"))
        .order_by()
        .values("mailbox_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    found = (
        Mailbox.objects.filter(account_id=account_id, name__in=names)
        .annotate(first_recent=Coalesce("recent_mark__first_uid", 1))
        .annotate(recent=Coalesce(Subquery(recent), 0))
    )
    # The folder's counts as its row keeps them: MESSAGES, UNSEEN, DELETED, SIZE (RFC 8438), octets of DELETED.
    columns = ("name", "uidnext", "uidvalidity", "highestmodseq", "recent", *counters.COUNT_COLUMNS)
    out = {}
    for (
        name,
        uidnext,
        uidvalidity,
        highestmodseq,
        n_recent,
        n,
        unseen,
        deleted,
        size,
        deleted_size,
    ) in found.values_list(*columns):
        out[name] = {
            "MESSAGES": n,
            "RECENT": n_recent,
            "UIDNEXT": uidnext,
            "UIDVALIDITY": uidvalidity,
            "UNSEEN": unseen,
            "DELETED": deleted,
            "SIZE": size,
            # RFC 9208 4.2.2: what EXPUNGE would free, in units of 1024 octets.
            "DELETED-STORAGE": -(-deleted_size // 1024),
            "HIGHESTMODSEQ": highestmodseq,
        }
    return out


@dataclass(frozen=True)
class Usage:
    """An account's usage and limits (0: no limit)."""

    used_bytes: int
    quota_bytes: int
    used_messages: int
    quota_messages: int


def quota(account_id: int, name: str) -> Usage | None:
    """The account's usage and limits, or None when it has no folder `name`."""
    if not Mailbox.objects.filter(account_id=account_id, name=name).exists():
        return None
    columns = ("used_bytes", "quota_bytes", "used_messages", "quota_messages")
    return Usage(*Account.objects.filter(pk=account_id).values_list(*columns).get())


def create_folder(account: Account, name: str, role: str) -> bool:
    """CREATE, with a special use (RFC 6154) when `role` is set; False when another folder has that use."""
    if role and Mailbox.objects.filter(account=account, role=role).exists():
        return False
    try:
        actions.create_mailbox(account, name, role=role)
    except IntegrityError:
        return False  # another session gave the use to a folder meanwhile (the unique constraint held)
    return True


def delete_folder(account: Account, name: str) -> bool:
    mailbox_id = folder_id(account.pk, name)
    if mailbox_id is None:
        return False
    actions.delete_mailbox(account, mailbox_id)
    return True


def rename_folder(account: Account, old: str, new: str) -> bool:
    mailbox_id = folder_id(account.pk, old)
    if mailbox_id is None:
        return False
    actions.rename_mailbox(account, mailbox_id, new)
    return True


def expunge(account: Account, mailbox_id: int, uids: Sequence[int] | None) -> list[int]:
    return actions.expunge(account, mailbox_id, uids)
