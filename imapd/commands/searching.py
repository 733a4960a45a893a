"""SEARCH and UID SEARCH (RFC 3501 6.4.4), with ESEARCH result options (RFC 4731) and the saved result of
SEARCHRES (RFC 5182); SORT and THREAD (RFC 5256), which take the same search keys."""

from __future__ import annotations

from imapd import ordering, search_keys, search_sql, sequence, store
from imapd.protocol import Command, ParseError
from imapd.session import No, Selected, Session
from mailboxes import asyncdb


def _selected(session: Session) -> Selected:
    assert session.selected is not None
    return session.selected


def esearch_response(
    tag: str, by_uid: bool, returns: tuple[str, ...], numbers: list[int], modseq: int | None = None
) -> bytes:
    """RFC 4731 3.1: "* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set"; MIN, MAX and ALL are left out
    when nothing matched, COUNT never."""
    parts = [f'* ESEARCH (TAG "{tag}")']
    if by_uid:
        parts.append("UID")
    if numbers:
        if "MIN" in returns:
            parts.append(f"MIN {numbers[0]}")
        if "MAX" in returns:
            parts.append(f"MAX {numbers[-1]}")
    if "COUNT" in returns:
        parts.append(f"COUNT {len(numbers)}")
    if numbers and "ALL" in returns:
        parts.append(f"ALL {sequence.compress(numbers)}")
    if modseq is not None:
        parts.append(f"MODSEQ {modseq}")  # RFC 7162 3.1.5, RFC 4731 3.2
    return (" ".join(parts) + "\r\n").encode()


def saved_result(returns: tuple[str, ...], uids: list[int]) -> list[int]:
    """RFC 5182 2.4: SAVE with MIN and/or MAX (and neither ALL nor COUNT) saves only those messages."""
    if "ALL" in returns or "COUNT" in returns or not ({"MIN", "MAX"} & set(returns)):
        return uids
    if not uids:
        return []
    picked = {uids[0]} if "MIN" in returns else set()
    if "MAX" in returns:
        picked.add(uids[-1])
    return sorted(picked)


async def search(session: Session, command: Command) -> str:
    selected = _selected(session)
    by_uid = command.name == "UID SEARCH"
    try:
        parsed = search_keys.parse(command.args)
    except search_keys.BadCharset:
        if _wants_save(command):
            selected.saved = []
        raise No(f"[BADCHARSET ({' '.join(search_keys.CHARSETS)})] Unsupported charset") from None
    except ParseError:
        if _wants_save(command):
            selected.saved = []  # RFC 5182 2.1: a failed SEARCH ... SAVE empties the saved result
        raise
    uses_modseq = search_keys.uses_modseq(parsed.key)
    if uses_modseq:
        session.enable_condstore()
    uids, highest = await asyncdb.call(store.search, _context(selected), parsed.key, selected.max_uid)
    returns = parsed.returns
    if returns is None and session.rev2:
        returns = ("ALL",)  # RFC 9051 6.4.4: IMAP4rev2 answers every SEARCH with ESEARCH, ALL by default
    if returns is not None and "SAVE" in returns:
        selected.saved = saved_result(returns, uids)
    numbers = uids if by_uid else [n for n in (selected.seq_of(uid) for uid in uids) if n is not None]
    # RFC 7162 3.1.5: a search with MODSEQ also tells the highest mod-sequence of what it found.
    modseq = highest if uses_modseq and numbers else None
    if returns is None:
        tail = b" (MODSEQ %d)" % modseq if modseq is not None else b""
        session.send(b"* SEARCH" + b"".join(b" %d" % n for n in numbers) + tail + b"\r\n")
    elif set(returns) != {"SAVE"}:  # RFC 5182 2.4: SAVE alone returns no ESEARCH response
        session.send(esearch_response(command.tag, by_uid, returns, numbers, modseq))
    return f"{command.name} completed"


def _wants_save(command: Command) -> bool:
    args = command.args
    return (
        len(args) > 1
        and str(args[0]).upper() == "RETURN"
        and isinstance(args[1], list)
        and any(str(a).upper() == "SAVE" for a in args[1])
    )


def _context(selected: Selected) -> search_sql.Context:
    return search_sql.Context(selected.mailbox_id, selected.uids, selected.recent, selected.saved)


async def sort(session: Session, command: Command) -> str:
    selected = _selected(session)
    by_uid = command.name == "UID SORT"
    criteria, keys = ordering.parse_sort(command.args)
    parsed = search_keys.parse(keys)
    uids = await asyncdb.call(store.sort, _context(selected), parsed.key, selected.max_uid, criteria)
    numbers = uids if by_uid else [n for n in (selected.seq_of(uid) for uid in uids) if n is not None]
    session.send(b"* SORT" + b"".join(b" %d" % n for n in numbers) + b"\r\n")
    return f"{command.name} completed"


async def thread(session: Session, command: Command) -> str:
    selected = _selected(session)
    by_uid = command.name == "UID THREAD"
    algorithm, keys = ordering.parse_thread(command.args)
    parsed = search_keys.parse(keys)
    rendered = await asyncdb.call(store.thread, _context(selected), parsed.key, selected.max_uid, algorithm, by_uid)
    session.send(b"* THREAD " + rendered + b"\r\n" if rendered else b"* THREAD\r\n")
    return f"{command.name} completed"


HANDLERS = {
    "SEARCH": search,
    "UID SEARCH": search,
    "SORT": sort,
    "UID SORT": sort,
    "THREAD": thread,
    "UID THREAD": thread,
}
