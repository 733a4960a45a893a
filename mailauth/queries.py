"""Store reads verification needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from mailboxes import asyncdb
from mailboxes.models import Domain


def _max_age() -> float:
    """MAILSITE_AUTH_CACHE_SECONDS: how long a listener process trusts what it read of our domains and of the
    recipients' junk settings. Every message needs them, and a query each cost the MX a tenth of its
    throughput; a domain added, a list changed or a training done counts at most this much later."""
    return float(settings.MAILSITE_AUTH_CACHE_SECONDS)


def domain_names() -> frozenset[str]:
    """Every domain of ours, active or not (a disabled domain of ours is still ours)."""
    return frozenset(Domain.objects.values_list("name", flat=True))


class LocalDomains:
    """The process's view of our domains, refreshed through one `asyncdb.call` when older than the limit."""

    def __init__(self) -> None:
        self._names: frozenset[str] = frozenset()
        self._read_at = -float("inf")
        self._refresh: asyncio.Lock | None = None

    async def among(self, names: Sequence[str]) -> list[str]:
        """Those of `names` that are our domains."""
        if names and time.monotonic() - self._read_at >= _max_age():
            self._refresh = self._refresh or asyncio.Lock()
            async with self._refresh:
                if time.monotonic() - self._read_at >= _max_age():
                    self._names = await asyncdb.call(domain_names)
                    self._read_at = time.monotonic()
        return [name for name in names if name in self._names]


@dataclass(frozen=True)
class JunkFacts:
    trained: dict[int, tuple[int, int]]  # accounts that trained both classes: (spam, ham) messages trained
    rules: dict[int, list[tuple[str, bool]]]  # each account's allow (True) and block (False) list entries


def junk_facts(account_ids: Sequence[int]) -> JunkFacts:
    """What the recipients' own junk settings say, in one call: their training and their sender lists."""
    from django.db.models import Count

    from mailauth.models import JunkTraining, SenderRule

    ids = list(account_ids)
    trained: dict[int, dict[bool, int]] = {}
    rows = JunkTraining.objects.filter(account_id__in=ids).values("account_id", "spam")
    for account_id, spam, count in rows.annotate(n=Count("id")).values_list("account_id", "spam", "n"):
        trained.setdefault(account_id, {})[spam] = count
    rules: dict[int, list[tuple[str, bool]]] = {}
    for account_id, sender, allow in SenderRule.objects.filter(account_id__in=ids).values_list(
        "account_id", "sender", "allow"
    ):
        rules.setdefault(account_id, []).append((sender, allow))
    return JunkFacts({a: (c[True], c[False]) for a, c in trained.items() if c.get(True) and c.get(False)}, rules)


def token_counts(account_ids: Sequence[int], tokens: Sequence[int]) -> dict[int, dict[int, tuple[int, int]]]:
    """Per account, the spam and ham counts of those of `tokens` it has seen."""
    from mailauth.models import JunkToken

    counts: dict[int, dict[int, tuple[int, int]]] = {a: {} for a in account_ids}
    rows = JunkToken.objects.filter(account_id__in=list(account_ids), token__in=list(tokens))
    for account_id, token, spam, ham in rows.values_list("account_id", "token", "spam", "ham"):
        counts[account_id][token] = (spam, ham)
    return counts


class RecentJunkFacts:
    """`junk_facts` per account, kept for MAILSITE_AUTH_CACHE_SECONDS per listener process."""

    def __init__(self) -> None:
        self._facts: dict[int, tuple[float, tuple[int, int] | None, list[tuple[str, bool]]]] = {}

    async def of(self, account_ids: Sequence[int]) -> JunkFacts:
        now = time.monotonic()
        stale = [a for a in account_ids if a not in self._facts or now - self._facts[a][0] >= _max_age()]
        if stale:
            fresh = await asyncdb.call(junk_facts, stale)
            if len(self._facts) > 100_000:
                self._facts.clear()
            for account_id in stale:
                self._facts[account_id] = (now, fresh.trained.get(account_id), fresh.rules.get(account_id, []))
        trained = {a: self._facts[a][1] for a in account_ids if self._facts[a][1] is not None}
        rules = {a: self._facts[a][2] for a in account_ids if self._facts[a][2]}
        return JunkFacts(trained, rules)  # type: ignore[arg-type]
