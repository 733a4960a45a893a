"""Group commits: deliveries finishing DATA at about the same time share one transaction.

Up to `max_in_flight` groups are stored at once (each in its own database thread); messages that complete
DATA meanwhile wait in `pending`, and the next free group takes them all (up to `max_group`). Each session
still gets its reply only after the commit that stored its message, so durability before 250 is unchanged,
but a busy listener pays one commit (one WAL flush, one folder-row lock) per group instead of per message.
A lone message is stored at once, without waiting for company.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailboxes import actions, asyncdb
from mailcore.dsn import UNASKED, Requests


@dataclass
class _Pending:
    delivery: actions.Delivery
    resolved: dict[str, actions.Resolution]
    future: asyncio.Future[actions.DeliveryReport]
    junk: actions.JunkFor = False
    requests: Requests = UNASKED


class DeliveryGroups:
    def __init__(self, *, max_in_flight: int, max_group: int = 64) -> None:
        self.max_in_flight = max_in_flight
        self.max_group = max_group
        self._pending: list[_Pending] = []
        self._draining: set[asyncio.Task[None]] = set()

    async def deliver(
        self,
        raw: bytes,
        envelope_sender: str,
        recipients: Sequence[str],
        resolved: Mapping[str, actions.Resolution] | None = None,
        junk: actions.JunkFor = False,
        requests: Requests = UNASKED,
    ) -> actions.DeliveryReport:
        """Store one message (within a group); raises what `actions.deliver` raises for it. `resolved`: the
        RCPT-time answers for its recipients, which the group uses instead of looking them up again; `requests`:
        the sender's DSN and REQUIRETLS parameters."""
        future: asyncio.Future[actions.DeliveryReport] = asyncio.get_running_loop().create_future()
        delivery = (raw, envelope_sender, list(recipients))
        self._pending.append(_Pending(delivery, dict(resolved or {}), future, junk, requests))
        if len(self._draining) < self.max_in_flight:
            self._draining.add(asyncio.get_running_loop().create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        try:
            await self._store_pending()
        finally:
            # Leave the set in the same step that found nothing pending: a done-callback would run a step later,
            # and a message queued in between would wait for a drain that never starts.
            task = asyncio.current_task()
            if task is not None:
                self._draining.discard(task)

    async def _store_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending[: self.max_group], self._pending[self.max_group :]
            resolved = {address: r for pending in group for address, r in pending.resolved.items()}
            try:
                results = await asyncdb.call(
                    actions.deliver_many,
                    [p.delivery for p in group],
                    resolved,
                    [p.junk for p in group],
                    [p.requests for p in group],
                )
            except Exception as exc:  # the whole transaction failed: nothing of this group is stored
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for future, result in zip((p.future for p in group), results, strict=True):
                if future.done():
                    continue  # the session went away; its message is stored all the same
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
