"""Message bodies for RETR, read from the store ahead of the client.

Clients download in order, so RETR reads the bodies of the following messages in the same query (a batch of up to
READAHEAD_BYTES or READAHEAD_MESSAGES). Once the client has taken a second message of a batch (it is reading in
order, not jumping about), the batch after it is read meanwhile, so the client is sent one batch while the
database reads the next instead of waiting for each batch in turn. A jump, or a message removed meanwhile, falls
back to reading a batch at the message asked for.
"""

from __future__ import annotations

import asyncio

from mailboxes import asyncdb
from pop3d import maildrop
from pop3d.protocol import ScanEntry

READAHEAD_BYTES = 2 * 1024 * 1024
READAHEAD_MESSAGES = 100


class Bodies:
    def __init__(self, inbox_id: int, entries: tuple[ScanEntry, ...]) -> None:
        self.inbox_id = inbox_id
        self.entries = entries
        self.batch: dict[int, bytes] = {}
        self.batch_end = 0  # number of the first message after the batch in hand
        self.next: asyncio.Future[dict[int, bytes]] | None = None
        self.next_end = 0

    def _following(self, number: int) -> tuple[list[int], int]:
        """Body ids of the batch starting at message `number` (1-based), and the number of the message after it."""
        body_ids: list[int] = []
        total = 0
        for entry in self.entries[number - 1 : number - 1 + READAHEAD_MESSAGES]:
            if body_ids and total + entry.size > READAHEAD_BYTES:
                break
            body_ids.append(entry.body_id)
            total += entry.size
        return body_ids, number + len(body_ids)

    async def body(self, number: int) -> bytes | None:
        """The stored bytes of message `number`, or None once no Inbox message has them any more."""
        body_id = self.entries[number - 1].body_id
        if body_id in self.batch:
            if self.next is None and self.batch_end <= len(self.entries):
                body_ids, self.next_end = self._following(self.batch_end)
                self.next = asyncio.ensure_future(asyncdb.call(maildrop.read_bodies, self.inbox_id, body_ids))
            return self.batch.pop(body_id)
        if self.next is not None:
            following, self.next = self.next, None
            self.batch, self.batch_end = await following, self.next_end
            if body_id in self.batch:
                return await self.body(number)  # the client keeps reading in order: start the next batch
        body_ids, end = self._following(number)
        self.batch, self.batch_end = await asyncdb.call(maildrop.read_bodies, self.inbox_id, body_ids), end
        return self.batch.pop(body_id, None)

    def close(self) -> None:
        """Drop a read ahead still on its way (the session is ending)."""
        if self.next is None:
            return
        if not self.next.done():
            self.next.cancel()
        elif not self.next.cancelled():
            self.next.exception()  # looked at, so an error of a batch nobody needs is not reported as lost
        self.next = None
