"""Folder commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB, STATUS, APPEND
(RFC 3501 6.3), with SPECIAL-USE attributes (RFC 6154) and CHILDREN attributes (RFC 3348) in LIST."""

from __future__ import annotations

import datetime
import re
import unicodedata

from imapd import fetch, listing, mutf7, sequence, store
from imapd.commands.args import count, mailbox, supplied_name, wire_name
from imapd.protocol import Atom, Command, ParseError, Token, astring
from imapd.session import No, Session
from mailboxes import actions, asyncdb
from mailcore.imap_wire import string
from mailcore.mime import MimeError

_ROLES = {f"\\{role}": role for role in ("archive", "drafts", "junk", "sent", "trash")}
# RFC 3501 6.3.10, SIZE (RFC 8438), HIGHESTMODSEQ (RFC 7162 3.1.9), DELETED (RFC 9051 6.3.11),
# DELETED-STORAGE (RFC 9208 4.2.2).
_STATUS_ITEMS = (
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "SIZE",
    "HIGHESTMODSEQ",
    "DELETED",
    "DELETED-STORAGE",
)
_DATE_TIME = re.compile(r"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def _select_parameters(session: Session, token: Token) -> store.Resync | None:
    """SELECT parameters (RFC 4466 2.1): CONDSTORE (RFC 7162 3.1.8) and QRESYNC (RFC 7162 3.2.5)."""
    if not isinstance(token, list):
        raise ParseError("SELECT parameters must be a list")
    resync = None
    pos = 0
    while pos < len(token):
        name = str(token[pos]).upper() if isinstance(token[pos], Atom) else ""
        if name == "CONDSTORE":
            session.condstore = True  # this SELECT tells HIGHESTMODSEQ itself
            pos += 1
        elif name == "QRESYNC" and pos + 1 < len(token) and isinstance(token[pos + 1], list):
            if not session.qresync:
                raise ParseError("QRESYNC must be enabled first")  # RFC 7162 3.2.5
            resync = _resync(token[pos + 1])
            pos += 2
        else:
            raise ParseError("Unknown SELECT parameter")
    return resync


def _resync(values: list[Token]) -> store.Resync:
    """(uidvalidity mod-sequence [known-uids] [(known-sequence-set known-uid-set)])"""
    if len(values) < 2 or not all(isinstance(v, Atom) for v in values[:2]) or not str(values[0]).isdigit():
        raise ParseError("QRESYNC needs a UIDVALIDITY and a mod-sequence")
    known = None
    rest = values[2:]
    if rest and isinstance(rest[0], Atom):
        known = sequence.parse(rest.pop(0))
    # The sequence match data only helps a server without an expunge log; it is checked and not used.
    if len(rest) > 1 or (rest and not isinstance(rest[0], list)):
        raise ParseError("Invalid QRESYNC parameter")
    return store.Resync(int(str(values[0])), fetch.mod_sequence(values[1]), known)


async def _open(session: Session, command: Command, readonly: bool) -> str:
    args = count(command, 1, 2)
    token = args[0]
    resync = _select_parameters(session, args[1]) if len(args) == 2 else None
    if session.selected is not None and (session.condstore or session.rev2):
        session.send(b"* OK [CLOSED] Previous folder closed\r\n")  # RFC 7162 3.2.11, RFC 9051 7.1
    session.unselect()  # RFC 3501 6.3.1: a failed SELECT leaves no folder selected
    assert session.account is not None
    name = mailbox(token, session.utf8)
    snapshot = await asyncdb.call(
        store.open_mailbox, session.account.pk, name, resync, readonly=readonly, attributes=session.rev2
    )
    if snapshot is None:
        raise No("[NONEXISTENT] No such folder")
    selected = session.select(snapshot, readonly)
    session.send_flag_lists()
    session.send(b"* %d EXISTS\r\n" % len(selected.uids))
    if session.rev2:
        # RFC 9051 6.3.2: a LIST response with the folder's name and attributes; no RECENT, no UNSEEN.
        assert snapshot.attributes is not None
        entry = " ".join(snapshot.attributes).encode()
        session.send(b'* LIST (%s) "/" %s\r\n' % (entry, string(wire_name(snapshot.name, session.utf8))))
    else:
        session.send(b"* %d RECENT\r\n" % len(selected.recent))
        first_unseen = None if snapshot.first_unseen_uid is None else selected.seq_of(snapshot.first_unseen_uid)
        if first_unseen is not None:
            session.send(b"* OK [UNSEEN %d] First unseen\r\n" % first_unseen)
    session.send(b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % snapshot.uidvalidity)
    session.send(b"* OK [UIDNEXT %d] Predicted next UID\r\n" % snapshot.uidnext)
    # RFC 7162 3.1.2.1: every successful SELECT/EXAMINE tells the highest mod-sequence.
    session.send(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % snapshot.highestmodseq)
    if snapshot.vanished:
        session.send(b"* VANISHED (EARLIER) %s\r\n" % sequence.text(snapshot.vanished).encode())
    for uid, modseq, flags in snapshot.changed:
        seq = selected.seq_of(uid)
        if seq is not None:
            selected.told[uid] = flags
            selected.told_modseq[uid] = modseq
            if uid in selected.recent:
                flags = [*flags, "\\Recent"]
            session.send(session.flags_fetch(seq, uid, flags, modseq))
    return f"[{'READ-ONLY' if readonly else 'READ-WRITE'}] {command.name} completed"


async def select(session: Session, command: Command) -> str:
    return await _open(session, command, readonly=False)


async def examine(session: Session, command: Command) -> str:
    return await _open(session, command, readonly=True)


def _create_use(token: Token) -> str:
    """CREATE's (USE (attribute)) parameter (RFC 6154 3): the folder role it asks for."""
    if not isinstance(token, list) or len(token) != 2 or str(token[0]).upper() != "USE":
        raise ParseError("The CREATE parameter is USE (special-use attribute)")
    uses = token[1]
    if not isinstance(uses, list) or not uses:
        raise ParseError("USE needs a list of special-use attributes")
    roles = [_ROLES.get(str(use).lower()) for use in uses]
    # RFC 6154 3: a use this server does not give, or several uses for one folder, is NO [USEATTR].
    if len(roles) != 1 or roles[0] is None:
        raise No("[USEATTR] A folder here has one of \\Archive \\Drafts \\Junk \\Sent \\Trash")
    return roles[0]


async def create(session: Session, command: Command) -> str:
    args = count(command, 1, 2)
    token = args[0]
    role = _create_use(args[1]) if len(args) == 2 else ""
    text = astring(token)
    # RFC 3501 6.3.3: a trailing delimiter only declares that children will follow.
    supplied = supplied_name(Atom(text[:-1]) if text.endswith("/") and len(text) > 1 else token, session.utf8)
    name = actions.normalise_folder_name(supplied)
    if name == "INBOX":
        raise No("[ALREADYEXISTS] INBOX always exists")
    assert session.account is not None
    try:
        created = await asyncdb.call(store.create_folder, session.account, name, role)
    except actions.AlreadyExists as exc:
        raise No(f"[ALREADYEXISTS] {exc}") from None
    if not created:
        raise No("[USEATTR] Another folder has that special use")
    if session.rev2 and not unicodedata.is_normalized("NFC", supplied):
        # RFC 9051 6.3.4: a name the server normalised is announced with the name asked for as OLDNAME.
        # New folders are subscribed, which the LIST must then say.
        listed = (string(wire_name(name, True)), string(supplied))
        session.send(b'* LIST (\\HasNoChildren \\Subscribed) "/" %s ("OLDNAME" (%s))\r\n' % listed)
    return "CREATE completed"


async def delete(session: Session, command: Command) -> str:
    (token,) = count(command, 1)
    name = mailbox(token, session.utf8)
    if name == "INBOX":
        raise No("[CANNOT] INBOX cannot be deleted")
    assert session.account is not None
    try:
        found = await asyncdb.call(store.delete_folder, session.account, name)
    except actions.HasChildren as exc:
        raise No(f"[HASCHILDREN] {exc}") from None  # RFC 9051 6.3.5, 7.1
    if not found:
        raise No("[NONEXISTENT] No such folder")
    if session.selected is not None and session.selected.name == name:
        session.unselect()
    return "DELETE completed"


async def rename(session: Session, command: Command) -> str:
    old, new = count(command, 2)
    old_name, new_name = mailbox(old, session.utf8), mailbox(new, session.utf8)
    assert session.account is not None
    try:
        found = await asyncdb.call(store.rename_folder, session.account, old_name, new_name)
    except actions.AlreadyExists as exc:
        raise No(f"[ALREADYEXISTS] {exc}") from None
    if not found:
        raise No("[NONEXISTENT] No such folder")
    if session.selected is not None and session.selected.name == old_name and old_name != "INBOX":
        session.selected.name = new_name
    return "RENAME completed"


async def _subscribe(session: Session, command: Command, subscribed: bool) -> str:
    (token,) = count(command, 1)
    assert session.account is not None
    # RFC 9051 6.3.7: a name that is no folder may be subscribed (RFC 3501 6.3.6 let a server refuse it; Dovecot
    # accepts it, and so do we).
    changed = await asyncdb.call(actions.set_subscribed, session.account, mailbox(token, session.utf8), subscribed)
    # RFC 9051 6.3.8: unsubscribing a name that is not subscribed is no error (RFC 3501 6.3.7 said NO).
    if not subscribed and not changed and not session.rev2:
        raise No("That name is not subscribed")
    return f"{command.name} completed"


async def subscribe(session: Session, command: Command) -> str:
    return await _subscribe(session, command, True)


async def unsubscribe(session: Session, command: Command) -> str:
    return await _subscribe(session, command, False)


def _folders(found: store.Folders, utf8: bool) -> tuple[list[listing.Folder], list[str]]:
    """The folders and subscribed names as the session's wire names them."""
    folders = [listing.Folder(wire_name(f.name, utf8), f.role) for f in found.folders]
    return folders, [wire_name(name, utf8) for name in found.subscribed]


def _stored_name(wire: str, utf8: bool) -> str:
    return wire if utf8 else mutf7.decode(wire)


async def list_(session: Session, command: Command) -> str:
    request = listing.parse_list(command.args)
    if request.patterns == [""] and not request.extended:
        # RFC 3501 6.3.8: an empty pattern asks for the delimiter and the root of the reference.
        session.send(b'* LIST (\\Noselect) "/" ""\r\n')
        return "LIST completed"
    if request.status_items:
        _check_status_items(session, request.status_items)
    assert session.account is not None
    found = await asyncdb.call(store.folders, session.account.pk)
    chosen = listing.entries(request, *_folders(found, session.utf8))
    statuses: dict[str, dict[str, int]] = {}
    if request.status_items and chosen:
        # RFC 5819: one STATUS response after the LIST response of each selectable folder.
        names = [_stored_name(entry.name, session.utf8) for entry in chosen if entry.selectable]
        statuses = await asyncdb.call(store.statuses, session.account.pk, names)
    for entry in chosen:
        session.send(listing.list_response(entry))
        values = statuses.get(_stored_name(entry.name, session.utf8))
        if values is not None:
            session.send(_status_response(entry.name, request.status_items, values))
    return "LIST completed"


async def lsub(session: Session, command: Command) -> str:
    reference, pattern = count(command, 2)
    ref_text, pattern_text = astring(reference), astring(pattern)
    if not pattern_text:
        session.send(b'* LSUB (\\Noselect) "/" ""\r\n')
        return "LSUB completed"
    assert session.account is not None
    found = await asyncdb.call(store.folders, session.account.pk)
    for entry in listing.lsub_entries(ref_text, pattern_text, *_folders(found, session.utf8)):
        session.send(listing.lsub_response(entry))
    return "LSUB completed"


def _check_status_items(session: Session, items: list[str]) -> None:
    if not items or any(i not in _STATUS_ITEMS for i in items):
        raise ParseError(f"STATUS items are {' '.join(_STATUS_ITEMS)}")
    if session.rev2 and "RECENT" in items:
        raise ParseError("IMAP4rev2 has no RECENT")  # RFC 9051 6.3.11's status-att and Appendix E
    if "HIGHESTMODSEQ" in items:
        session.enable_condstore()  # RFC 7162 3.1


def _status_response(wire: str, items: list[str], values: dict[str, int]) -> bytes:
    pairs = " ".join(f"{item} {values[item]}" for item in items)
    return b"* STATUS %s (%s)\r\n" % (string(wire), pairs.encode())


async def status(session: Session, command: Command) -> str:
    token, items = count(command, 2)
    if not isinstance(items, list) or not items:
        raise ParseError("STATUS needs a list of items")
    wanted = [astring(i).upper() for i in items]
    _check_status_items(session, wanted)
    name = mailbox(token, session.utf8)
    assert session.account is not None
    values = (await asyncdb.call(store.statuses, session.account.pk, [name])).get(name)
    if values is None:
        raise No("[NONEXISTENT] No such folder")
    session.send(_status_response(wire_name(name, session.utf8), wanted, values))
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


def _utf8_data(session: Session, args: list[Token]) -> list[Token]:
    """APPEND's arguments with RFC 6855 4's "UTF8 (literal8)" replaced by the message it holds; that form only
    once UTF8=ACCEPT is enabled."""
    if len(args) < 3 or not isinstance(args[-2], Atom) or args[-2].upper() != "UTF8":
        return args
    if not session.utf8_accept:
        raise ParseError("APPEND UTF8 needs ENABLE UTF8=ACCEPT")
    data = args[-1]
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], bytes):
        raise ParseError("APPEND UTF8 takes the message as (literal8)")
    return [*args[:-2], data[0]]


async def append(session: Session, command: Command) -> str:
    args = _utf8_data(session, count(command, 2, 3, 4, 5))
    if len(args) > 4:
        raise ParseError("Wrong number of arguments for APPEND")
    name = mailbox(args[0], session.utf8)
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
    except actions.OverQuota as exc:
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
