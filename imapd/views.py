"""What the sessions of one imapd process share: each folder's UIDs as last read, and the reading of changes.

Dovecot answers SELECT from its index file. Here the process keeps, per folder, its ascending UIDs at a
mod-sequence (4 bytes a UID, `MAX_UIDS` in all, the least recently selected folders dropped first). SELECT of
a folder this process saw before reads only what changed since (`store.changes_since`: new UIDs from the
(mailbox, modseq) index, expunges from the expunge log, or a full read when the log was pruned past it), as a
selected session follows its folder; an unchanged folder costs no UID read at all. The store stays the only
truth: a view is labelled with the mod-sequence of the folder row read before its UIDs, so anything committed
later is read again as a change.

When a delivery wakes a thousand IDLE sessions on one folder, those that know the folder at the same
mod-sequence wait for one reading of the changes (`shared_changes`) instead of a thousand. \\Recent stays with
exactly one session (RFC 3501 2.3.2): the messages are claimed in a separate step, at most once per process
and range, and only the session that made the claim gets them.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

MAX_UIDS = 1_000_000  # about 4 MB of UIDs per process


@dataclass(frozen=True)
class View:
    """A folder as read at mod-sequence `modseq` or later: while its row still says `modseq`, nothing changed
    since, and all of it holds as it is."""

    modseq: int
    uids: array[int]
    keywords: tuple[str, ...]
    first_unseen: int | None


_lock = threading.Lock()
# (folder id, UIDVALIDITY) -> view, least recently used first. With UIDVALIDITY in the key, a folder made anew
# under a reused id (SQLite reuses the highest) is never taken for the old one.
_views: OrderedDict[tuple[int, int], View] = OrderedDict()
_held = 0  # UIDs in _views


def known(folder: tuple[int, int]) -> View | None:
    """The folder's view as last kept, or None. Its UIDs are shared (with the sessions that selected it): never
    changed, only copied."""
    with _lock:
        found = _views.get(folder)
        if found is not None:
            _views.move_to_end(folder)
        return found


def keep(folder: tuple[int, int], view: View) -> None:
    """Remember the folder's view, unless a newer one is kept already. Its UIDs are shared from then on: whoever
    holds them copies them before a change (a session does at its first EXISTS or EXPUNGE), so a thousand
    sessions on one folder hold one array of its UIDs, not a thousand."""
    global _held
    if len(view.uids) > MAX_UIDS:
        return
    with _lock:
        old = _views.get(folder)
        if old is not None:
            if old.modseq > view.modseq:
                return
            _held -= len(old.uids)
        _views[folder] = view
        _views.move_to_end(folder)
        _held += len(view.uids)
        while _held > MAX_UIDS:
            _, dropped = _views.popitem(last=False)
            _held -= len(dropped.uids)


def without(uids: array[int], gone: set[int]) -> array[int]:
    """Ascending `uids` less `gone`: in place for a few (each deletion is a move of the UIDs after it, in C: 10,000
    UIDs less two take microseconds where a pass in Python took half a millisecond), else in one new array."""
    if len(gone) > 64:
        return array("I", (uid for uid in uids if uid not in gone))
    for uid in sorted(gone, reverse=True):
        index = bisect.bisect_left(uids, uid)
        if index < len(uids) and uids[index] == uid:
            del uids[index]
    return uids


def forget_all() -> None:
    global _held
    with _lock:
        _views.clear()
        _held = 0


# --- one reading of changes for many sessions (event loop side) -------------------------------------------

_readings: dict[tuple[int, int, int, int], asyncio.Task] = {}
_claiming: set[tuple[int, int]] = set()  # (folder id, up to) claims under way
_claimed: dict[int, int] = {}  # folder id -> a \\Recent mark this process knows the store has passed


async def shared(key: tuple[int, int, int, int], read: Callable[[], Awaitable[T]]) -> T:
    """`read()`'s result; sessions asking with the same key while it runs get the same one. The reading is a
    task of its own, so a session that goes away meanwhile does not cancel it for the others."""
    task = _readings.get(key)
    if task is None:
        task = asyncio.ensure_future(read())
        _readings[key] = task
        task.add_done_callback(lambda _: _readings.pop(key, None))
    return await asyncio.shield(task)


async def claim_once(mailbox_id: int, up_to: int, claim: Callable[[], Awaitable[int]]) -> int | None:
    """Claim the folder's \\Recent messages below `up_to` through `claim()` (which returns the first UID
    claimed) unless this process already did: then None, and the caller gets none of them."""
    if _claimed.get(mailbox_id, 0) >= up_to or (mailbox_id, up_to) in _claiming:
        return None
    _claiming.add((mailbox_id, up_to))
    try:
        first = await claim()
    finally:
        _claiming.discard((mailbox_id, up_to))
    _claimed[mailbox_id] = max(_claimed.get(mailbox_id, 0), up_to)
    return first
