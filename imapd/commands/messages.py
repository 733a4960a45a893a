"""Commands of the selected state (RFC 3501 6.4): CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE, SEARCH,
FETCH, STORE, COPY, MOVE (RFC 6851) and their UID forms, UID EXPUNGE (RFC 4315)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from imapd import fetch, sequence, store
from imapd.commands.args import count, mailbox
from imapd.protocol import Atom, Command, ParseError, Token, astring
from imapd.session import No, Selected, Session
from mailboxes import actions, asyncdb
from mailboxes.models import Account

FETCH_BATCH = 1000  # messages per database call
FETCH_BATCH_BODIES = 50  # when whole bodies or parts of them are read


def _selected(session: Session) -> Selected:
    assert session.selected is not None
    assert session.account is not None
    return session.selected


def _account(session: Session) -> Account:
    assert session.account is not None
    return session.account


def _writable(session: Session) -> Selected:
    selected = _selected(session)
    if selected.readonly:
        raise No("[READ-ONLY] The folder is open read-only")
    return selected


async def check(session: Session, command: Command) -> str:
    count(command, 0)
    return "CHECK completed"


async def close(session: Session, command: Command) -> str:
    count(command, 0)
    selected = _selected(session)
    if not selected.readonly:
        # RFC 3501 6.4.2: expunge silently, no EXPUNGE responses.
        await asyncdb.call(store.expunge, _account(session), selected.mailbox_id, None)
    session.unselect()
    return "CLOSE completed"


async def unselect(session: Session, command: Command) -> str:
    count(command, 0)
    session.unselect()
    return "UNSELECT completed"


async def expunge(session: Session, command: Command) -> str:
    by_uid = command.name == "UID EXPUNGE"
    args = count(command, 1 if by_uid else 0)
    selected = _writable(session)
    uids = None
    if by_uid:
        uids = sequence.uids_in(sequence.uid_ranges(sequence.parse(args[0]), selected.uids, by_uid=True), selected.uids)
    removed = await asyncdb.call(store.expunge, _account(session), selected.mailbox_id, uids)
    session.expunged(removed)
    return f"{command.name} completed"


def _ranges(selected: Selected, token, by_uid: bool) -> list[tuple[int, int]]:
    if token == "$":
        # RFC 5182 2.1: the messages of the saved search result, in sequence-set and UID commands alike.
        return [(uid, uid) for uid in selected.saved or ()]
    return sequence.uid_ranges(sequence.parse(token), selected.uids, by_uid=by_uid)


async def fetch_(session: Session, command: Command) -> str:
    selected = _selected(session)
    by_uid = command.name == "UID FETCH"
    if len(command.args) not in (2, 3):
        raise ParseError("FETCH needs a sequence set and items")
    ranges = _ranges(selected, command.args[0], by_uid)
    request = fetch.parse(command.args[1:2])
    request.downgrade = not session.utf8
    modifiers = fetch.parse_modifiers(command.args[2] if len(command.args) == 3 else None)
    if modifiers.vanished and not (by_uid and session.qresync):
        raise ParseError("VANISHED needs UID FETCH and QRESYNC enabled")  # RFC 7162 3.2.6
    if modifiers.changed_since is not None or any(i.name == "MODSEQ" for i in request.items):
        session.enable_condstore()
    mark_seen = request.sets_seen and not selected.readonly
    if modifiers.vanished:
        assert modifiers.changed_since is not None
        # "*" here reaches past the view's highest UID, to messages expunged after the client last saw them.
        wide = sequence.uid_ranges(sequence.parse(command.args[0]), [sequence.MAX_UID], by_uid=True)
        gone = await asyncdb.call(store.vanished, selected.mailbox_id, wide, modifiers.changed_since)
        if gone:
            session.send(b"* VANISHED (EARLIER) %s\r\n" % sequence.text(gone).encode())
    # The replies are read and written in batches, so a session's memory stays bounded whatever the range.
    uids = sequence.uids_in(ranges, selected.uids)
    # RFC 7162 3.2.4: under QRESYNC every FETCH response carries the UID.
    include_uid = by_uid or session.qresync or modifiers.changed_since is not None
    size = FETCH_BATCH_BODIES if request.needs_raw and not request.header_only else FETCH_BATCH
    batches = [uids[start : start + size] for start in range(0, len(uids), size)]

    def read(batch: Sequence[int]) -> asyncio.Future[store.Fetched]:
        return asyncio.ensure_future(
            asyncdb.call(
                store.fetch,
                _account(session),
                selected.mailbox_id,
                sequence.runs(batch),
                selected.max_uid,
                request,
                mark_seen,
                modifiers.changed_since,
            )
        )

    # Without \\Seen to set, the next batch is read while this one is made and written: the database works while
    # the listener does instead of in turn.
    ahead: asyncio.Future[store.Fetched] | None = None
    try:
        for index, batch in enumerate(batches):
            result = await _fetched(ahead if ahead is not None else read(batch))
            ahead = None
            if not mark_seen and index + 1 < len(batches):
                ahead = read(batches[index + 1])
                await asyncio.sleep(0)  # the read starts now (it reaches its thread), not at the next write's pause
            await _send_fetched(session, selected, request, result, include_uid)
    finally:
        if ahead is not None:
            ahead.cancel()  # the command failed or the session ended: nobody needs that batch
    return f"{command.name} completed"


async def _fetched(reading: asyncio.Future[store.Fetched]) -> store.Fetched:
    try:
        return await reading
    except fetch.UnknownTransferEncoding as exc:
        raise No(f"[UNKNOWN-CTE] Cannot decode the transfer encoding {exc}") from None


async def _send_fetched(
    session: Session, selected: Selected, request: fetch.Request, result: store.Fetched, include_uid: bool
) -> None:
    needs_flags = request.needs_flags
    for message in result.messages:
        uid = message.uid
        seq = selected.seq_of(uid)
        if seq is None:
            continue
        flags = message.flags
        seen_now = uid in result.seen_set
        # Keywords come last in the list: announce them only for messages that have any.
        if (needs_flags or seen_now) and flags and not flags[-1].startswith("\\"):
            session.announce_keywords(flags)
        if seen_now:
            # Told here, so the session's next check does not announce this \\Seen again.
            selected.told[uid] = list(flags)
            selected.told_modseq[uid] = message.modseq
        if uid in selected.recent:
            flags.append("\\Recent")
        response = fetch.render(
            seq,
            message,
            request,
            include_uid=include_uid,
            include_flags=seen_now,
            include_modseq=session.condstore and (needs_flags or seen_now),
        )
        await session.write(response)


_STORE_MODES = {"FLAGS": "replace", "+FLAGS": "add", "-FLAGS": "remove"}


async def store_(session: Session, command: Command) -> str:
    selected = _writable(session)
    by_uid = command.name == "UID STORE"
    args = list(command.args)
    unchanged_since = None
    if len(args) > 1 and isinstance(args[1], list):
        # RFC 7162 3.1.3: STORE set (UNCHANGEDSINCE n) item flags
        modifier = args.pop(1)
        if len(modifier) != 2 or str(modifier[0]).upper() != "UNCHANGEDSINCE":
            raise ParseError("The STORE modifier is UNCHANGEDSINCE n")
        unchanged_since = fetch.mod_sequence(cast(Token, modifier[1]))
        session.enable_condstore()
    if len(args) < 3:
        raise ParseError("STORE needs a sequence set, an item and flags")
    token, item, *values = args
    if not isinstance(item, Atom):
        raise ParseError("Invalid STORE item")
    name = item.upper()
    silent = name.endswith(".SILENT")
    mode = _STORE_MODES.get(name.removesuffix(".SILENT"))
    if mode is None:
        raise ParseError("STORE items are FLAGS, +FLAGS and -FLAGS, optionally .SILENT")
    if len(values) == 1 and isinstance(values[0], list):
        values = values[0]
    flags = [astring(v) for v in values]
    if any(not f or any(c in f for c in ' (){%*"]') for f in flags):
        raise ParseError("Invalid flag")
    flags = [f for f in flags if f.upper() != "\\RECENT"]  # \Recent is the server's to set (RFC 3501 2.3.2)
    ranges = _ranges(selected, token, by_uid)
    result = await asyncdb.call(
        store.store, _account(session), selected.mailbox_id, ranges, selected.max_uid, flags, mode, unchanged_since
    )
    for _uid, _modseq, current in result.messages:
        session.announce_keywords(current)
    for uid, modseq, current in result.messages:
        seq = selected.seq_of(uid)
        if seq is None or uid in result.modified:  # RFC 7162 3.1.3: a message left alone gets no FETCH
            continue
        selected.told[uid] = current
        selected.told_modseq[uid] = modseq
        if silent and not session.condstore:
            continue
        if uid in selected.recent:
            current = [*current, "\\Recent"]
        if silent:
            # RFC 7162 3.1.3: .SILENT still tells the new mod-sequence of each message changed.
            if uid in result.changed:
                uid_part = b"UID %d " % uid if by_uid or session.qresync else b""
                session.send(b"* %d FETCH (%sMODSEQ (%d))\r\n" % (seq, uid_part, modseq))
            continue
        session.send(session.flags_fetch(seq, uid if by_uid or session.qresync else None, current, modseq))
    if result.modified:
        numbers = result.modified if by_uid else [n for n in map(selected.seq_of, result.modified) if n is not None]
        return f"[MODIFIED {sequence.compress(sorted(numbers))}] Conditional {command.name} failed"
    return f"{command.name} completed"


async def _copy(session: Session, command: Command, move: bool) -> str:
    selected = _writable(session) if move else _selected(session)
    by_uid = command.name.startswith("UID")
    token, target = count(command, 2)
    ranges = _ranges(selected, token, by_uid)
    name = mailbox(target, session.utf8)
    try:
        result = await asyncdb.call(
            store.copy, _account(session), selected.mailbox_id, ranges, selected.max_uid, name, move
        )
    except actions.OverQuota as exc:
        raise No(f"[OVERQUOTA] {exc}") from None  # RFC 9208 4.5
    if result is None:
        raise No("[TRYCREATE] No such folder")
    uidvalidity, pairs = result
    code = ""
    if pairs:
        code = (
            f"[COPYUID {uidvalidity} {sequence.compress([s for s, _ in pairs])} "
            f"{sequence.compress([d for _, d in pairs])}] "
        )
    if name == selected.name:
        session.folder_changed = True
    if move:
        # RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
        if code:
            session.send(f"* OK {code}Moved\r\n".encode())
        session.expunged([s for s, _ in pairs])
        return f"{command.name} completed"
    return f"{code}{command.name} completed"


async def copy(session: Session, command: Command) -> str:
    return await _copy(session, command, move=False)


async def move(session: Session, command: Command) -> str:
    return await _copy(session, command, move=True)


HANDLERS = {
    "CHECK": check,
    "CLOSE": close,
    "UNSELECT": unselect,
    "EXPUNGE": expunge,
    "UID EXPUNGE": expunge,
    "FETCH": fetch_,
    "UID FETCH": fetch_,
    "STORE": store_,
    "UID STORE": store_,
    "COPY": copy,
    "UID COPY": copy,
    "MOVE": move,
    "UID MOVE": move,
}
