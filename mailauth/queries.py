"""Store reads verification needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from mailboxes import asyncdb
from mailboxes.models import Domain

# Our domain names, read at most this often per listener process: the forged-sender check needs them for
# every message, and a query per message cost the MX a tenth of its throughput. A domain added is protected
# from forged senders this many seconds later at most.
DOMAINS_MAX_AGE = 10.0


def domain_names() -> frozenset[str]:
    """Every domain of ours, active or not (a disabled domain of ours is still ours)."""
    return frozenset(Domain.objects.values_list("name", flat=True))


class LocalDomains:
    """The process's view of our domains, refreshed through one `asyncdb.call` when older than the limit."""

    def __init__(self) -> None:
        self._names: frozenset[str] = frozenset()
        self._read_at = -DOMAINS_MAX_AGE
        self._refresh: asyncio.Lock | None = None

    async def among(self, names: Sequence[str]) -> list[str]:
        """Those of `names` that are our domains."""
        if names and time.monotonic() - self._read_at >= DOMAINS_MAX_AGE:
            self._refresh = self._refresh or asyncio.Lock()
            async with self._refresh:
                if time.monotonic() - self._read_at >= DOMAINS_MAX_AGE:
                    self._names = await asyncdb.call(domain_names)
                    self._read_at = time.monotonic()
        return [name for name in names if name in self._names]

    def forget(self) -> None:
        self._read_at = -DOMAINS_MAX_AGE
