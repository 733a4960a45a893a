"""Folder commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB, STATUS, APPEND
(RFC 3501 6.3), with SPECIAL-USE attributes (RFC 6154) and CHILDREN attributes (RFC 3348) in LIST."""

from __future__ import annotations

import datetime
import re

from imapd import store
from imapd.commands.args import count, mailbox, wire_name
from imapd.protocol import Atom, Command, ParseError, astring
from imapd.session import No, Session, recent_from
from mailboxes import asyncdb, services
from mailcore.imap_wire import string
from mailcore.mime import MimeError

SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
_SPECIAL_USE = {"sent": "\\Sent", "drafts": "\\Drafts", "trash": "\\Trash", "junk": "\\Junk", "archive": "\\Archive"}
_STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
_DATE_TIME = re.compile(r"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


async def _open(session: Session, command: Command, readonly: bool) -> str:
    (token,) = count(command, 1)
    session.unselect()  # RFC 3501 6.3.1: a failed SELECT leaves no folder selected
    assert session.account is not None
    name = mailbox(token)
    snapshot = await asyncdb.call(store.open_mailbox, session.account.pk, name)
    if snapshot is None:
        raise No("[NONEXISTENT] No such folder")
    selected = session.select(snapshot, readonly)
    keywords = "".join(" " + k for k in snapshot.keywords)
    session.send(f"* FLAGS ({SYSTEM_FLAGS}{keywords})\r\n".encode())
    permanent = "" if readonly else f"{SYSTEM_FLAGS}{keywords} \\*"
    session.send(f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted\r\n".encode())
    session.send(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(selected.uids), len(selected.recent)))
    if snapshot.first_unseen_uid is not None:
        session.send(b"* OK [UNSEEN %d] First unseen\r\n" % selected.seq_of(snapshot.first_unseen_uid))
    session.send(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % snapshot.uidvalidity)
    session.send(b"* OK [UIDNEXT %d] Predicted next UID\r\n" % snapshot.uidnext)
    return f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {command.name} completed"


async def select(session: Session, command: Command) -> str:
    return await _open(session, command, readonly=False)


async def examine(session: Session, command: Command) -> str:
    return await _open(session, command, readonly=True)


async def create(session: Session, command: Command) -> str:
    (token,) = count(command, 1)
    text = astring(token)
    # RFC 3501 6.3.3: a trailing delimiter only declares that children will follow.
    name = mailbox(Atom(text[:-1]) if text.endswith("/") and len(text) > 1 else token)
    if name == "INBOX":
        raise No("[ALREADYEXISTS] INBOX always exists")
    assert session.account is not None
    try:
        await asyncdb.call(services.create_mailbox, session.account, name)
    except services.AlreadyExists as exc:
        raise No(f"[ALREADYEXISTS] {exc}") from None
    return "CREATE completed"


async def delete(session: Session, command: Command) -> str:
    (token,) = count(command, 1)
    name = mailbox(token)
    if name == "INBOX":
        raise No("[CANNOT] INBOX cannot be deleted")
    assert session.account is not None
    if session.selected is not None and session.selected.name == name:
        session.unselect()
    if not await asyncdb.call(store.delete_folder, session.account, name):
        raise No("[NONEXISTENT] No such folder")
    return "DELETE completed"


async def rename(session: Session, command: Command) -> str:
    old, new = count(command, 2)
    old_name, new_name = mailbox(old), mailbox(new)
    assert session.account is not None
    try:
        found = await asyncdb.call(store.rename_folder, session.account, old_name, new_name)
    except services.AlreadyExists as exc:
        raise No(f"[ALREADYEXISTS] {exc}") from None
    if not found:
        raise No("[NONEXISTENT] No such folder")
    if session.selected is not None and session.selected.name == old_name and old_name != "INBOX":
        session.selected.name = new_name
    return "RENAME completed"


async def _subscribe(session: Session, command: Command, subscribed: bool) -> str:
    (token,) = count(command, 1)
    assert session.account is not None
    try:
        await asyncdb.call(services.set_subscribed, session.account, mailbox(token), subscribed)
    except services.NotFound:
        raise No("[NONEXISTENT] No such folder") from None
    return f"{command.name} completed"


async def subscribe(session: Session, command: Command) -> str:
    return await _subscribe(session, command, True)


async def unsubscribe(session: Session, command: Command) -> str:
    return await _subscribe(session, command, False)


def _pattern(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 3501 6.3.8: "*" matches anything, "%" anything but the delimiter; INBOX in any case."""
    full = reference + pattern if not pattern.startswith("/") else pattern
    regex = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in full)
    if full[:5].upper() == "INBOX":
        regex = "INBOX" + "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in full[5:])
    return re.compile(regex + r"\Z", re.DOTALL)


async def _list(session: Session, command: Command, lsub: bool) -> str:
    reference, pattern = count(command, 2)
    ref_text, pattern_text = astring(reference), astring(pattern)
    if not pattern_text:
        # RFC 3501 6.3.8: an empty pattern asks for the delimiter and the root of the reference.
        session.send(b'* %s (\\Noselect) "/" ""\r\n' % command.name.encode())
        return f"{command.name} completed"
    assert session.account is not None
    folders = await asyncdb.call(store.folders, session.account.pk)
    names = {f.name for f in folders}
    match = _pattern(ref_text, pattern_text)
    for folder in folders:
        if lsub and not folder.subscribed:
            continue
        wire = wire_name(folder.name)
        if not match.match(wire):
            continue
        children = any(other.startswith(folder.name + "/") for other in names)
        attributes = ["\\HasChildren" if children else "\\HasNoChildren"]
        if folder.role in _SPECIAL_USE and not lsub:
            attributes.append(_SPECIAL_USE[folder.role])
        session.send(b'* %s (%s) "/" %s\r\n' % (command.name.encode(), " ".join(attributes).encode(), string(wire)))
    return f"{command.name} completed"


async def list_(session: Session, command: Command) -> str:
    return await _list(session, command, lsub=False)


async def lsub(session: Session, command: Command) -> str:
    return await _list(session, command, lsub=True)


async def status(session: Session, command: Command) -> str:
    token, items = count(command, 2)
    if not isinstance(items, list) or not items:
        raise ParseError("STATUS needs a list of items")
    wanted = [astring(i).upper() for i in items]
    if any(i not in _STATUS_ITEMS for i in wanted):
        raise ParseError(f"STATUS items are {' '.join(_STATUS_ITEMS)}")
    name = mailbox(token)
    assert session.account is not None
    values = await asyncdb.call(store.status, session.account.pk, name, dict(recent_from))
    if values is None:
        raise No("[NONEXISTENT] No such folder")
    pairs = " ".join(f"{item} {values[item]}" for item in wanted)
    session.send(b"* STATUS %s (%s)\r\n" % (string(wire_name(name)), pairs.encode()))
    return "STATUS completed"


def _date_time(text: str) -> datetime.datetime:
    match = _DATE_TIME.match(text)
    if match is None or match[2].lower() not in _MONTHS:
        raise ParseError(f"Invalid date-time {text!r}")
    day, _, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    offset = datetime.timedelta(hours=int(zone_h), minutes=int(zone_m)) * (-1 if sign == "-" else 1)
    try:
        return datetime.datetime(
            int(year),
            _MONTHS.index(match[2].lower()) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=datetime.timezone(offset),
        )
    except ValueError:
        raise ParseError(f"Invalid date-time {text!r}") from None


async def append(session: Session, command: Command) -> str:
    args = count(command, 2, 3, 4)
    name = mailbox(args[0])
    message = args[-1]
    if not isinstance(message, bytes):
        raise ParseError("APPEND needs the message as a literal")
    flags: list[str] = []
    date = None
    for extra in args[1:-1]:
        if isinstance(extra, list) and not flags and date is None:
            flags = [astring(f) for f in extra]
            if any(f.upper() == "\\RECENT" for f in flags):
                raise ParseError("\\Recent cannot be set")
        elif isinstance(extra, bytes) and date is None:
            date = _date_time(astring(extra))
        else:
            raise ParseError("APPEND takes a folder, optional flags, an optional date-time and a message")
    assert session.account is not None
    try:
        result = await asyncdb.call(store.append, session.account, name, message, flags, date)
    except services.OverQuota as exc:
        raise No(f"[OVERQUOTA] {exc}") from None
    except MimeError as exc:
        raise No(f"[CANNOT] The message cannot be stored: {exc}") from None
    if result is None:
        raise No("[TRYCREATE] No such folder")
    if session.selected is not None and session.selected.name == name:
        session.folder_changed = True
    uidvalidity, uid = result
    return f"[APPENDUID {uidvalidity} {uid}] APPEND completed"


HANDLERS = {
    "SELECT": select,
    "EXAMINE": examine,
    "CREATE": create,
    "DELETE": delete,
    "RENAME": rename,
    "SUBSCRIBE": subscribe,
    "UNSUBSCRIBE": unsubscribe,
    "LIST": list_,
    "LSUB": lsub,
    "STATUS": status,
    "APPEND": append,
}
