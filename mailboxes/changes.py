"""Change notifications between processes: who changed which folder.

Every change to a folder's messages raises the folder's `highestmodseq`, and on PostgreSQL a trigger on that
column sends the NOTIFY (migration 0025), so the writers spend no statement of their own on it. Writers call
`notify()` inside their transaction only for what raises no mod-sequence (a folder deleted, a sent message's
delivery state, an account's sessions to end). NOTIFY is delivered to listeners exactly when the transaction
commits (and never if it rolls back). Readers in an event loop (IMAP IDLE, webmail live updates) `subscribe()`
to an account on the loop's `ChangeHub`: one LISTEN connection per process and loop on PostgreSQL; on SQLite
the hub polls folders' `highestmodseq`.

A subscriber receives folder ids. The id 0 means "something may have changed anywhere" (sent after the hub
reconnects), so the subscriber re-reads what it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Iterable

from asgiref.sync import sync_to_async
from django.db import connection, connections

log = logging.getLogger(__name__)

CHANNEL = "mailsite_changes"
POLL_INTERVAL = 0.5  # seconds, SQLite only
ANYWHERE = 0


def notify(account_id: int, mailbox_id: int) -> None:
    notify_many([(account_id, mailbox_id)])


def notify_many(pairs: Iterable[tuple[int, int]]) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite readers poll highestmodseq, which every change raises
    payloads = sorted({f"{account_id}:{mailbox_id}" for account_id, mailbox_id in pairs})
    if payloads:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload", [CHANNEL, payloads])


class ChangeHub:
    """Fans change notifications out to the subscribers of one event loop."""

    def __init__(self) -> None:
        self._queues: dict[int, set[asyncio.Queue[int]]] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self, account_id: int) -> AsyncIterator[asyncio.Queue[int]]:
        """A queue receiving the ids of this account's folders as they change, while the block runs."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._queues.setdefault(account_id, set()).add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mailsite-change-hub")
        try:
            yield queue
        finally:
            subscribers = self._queues.get(account_id, set())
            subscribers.discard(queue)
            if not subscribers:
                self._queues.pop(account_id, None)
            if not self._queues and self._task is not None:
                # Nobody listens any more: stop, which closes the LISTEN connection.
                self._task.cancel()
                self._task = None

    def publish(self, account_id: int, mailbox_id: int) -> None:
        for queue in self._queues.get(account_id, ()):
            queue.put_nowait(mailbox_id)

    def _publish_everywhere(self) -> None:
        for account_id in list(self._queues):
            self.publish(account_id, ANYWHERE)

    async def _run(self) -> None:
        if connections["default"].vendor == "postgresql":
            await self._listen_forever()
        else:
            await self._poll_forever()

    async def _listen_forever(self) -> None:
        import psycopg

        params = connections["default"].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        delay = 0.5
        while self._queues:
            conn: psycopg.AsyncConnection | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                await conn.execute(f"LISTEN {CHANNEL}")
                self._publish_everywhere()  # anything may have happened while we were not listening
                delay = 0.5
                async for note in conn.notifies():
                    account, _, mailbox = note.payload.partition(":")
                    self.publish(int(account), int(mailbox))
            except (OSError, psycopg.Error) as exc:
                log.warning("change listener lost its database connection (%s); reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                # Not `async with`: on cancellation its exit would wait for the lock notifies() still holds,
                # while close() closes the socket at once.
                if conn is not None:
                    await conn.close()

    async def _poll_forever(self) -> None:
        seen: dict[int, tuple[int, int]] = {}
        while self._queues:
            current = await sync_to_async(_modseqs)(list(self._queues))
            for mailbox_id, (account_id, modseq) in current.items():
                if mailbox_id in seen and seen[mailbox_id][1] != modseq:
                    self.publish(account_id, mailbox_id)
            for mailbox_id in seen.keys() - current.keys():  # deleted folders
                self.publish(seen[mailbox_id][0], mailbox_id)
            seen = current
            await asyncio.sleep(POLL_INTERVAL)


def _modseqs(account_ids: list[int]) -> dict[int, tuple[int, int]]:
    from mailboxes.models import Mailbox

    return {
        pk: (account_id, modseq)
        for pk, account_id, modseq in Mailbox.objects.filter(account_id__in=account_ids).values_list(
            "id", "account_id", "highestmodseq"
        )
    }


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChangeHub] = weakref.WeakKeyDictionary()


def hub() -> ChangeHub:
    """The hub of the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = ChangeHub()
    return _hubs[loop]
