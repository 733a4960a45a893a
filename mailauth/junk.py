"""The junk verdict at DATA: the score of the configured engine, and the header fields that carry it.

With MAILSITE_RSPAMD_URL set, rspamd scores the message; when it is down or slow the message goes in
unscored and the log says so (never a refusal for our own trouble). Without it, the built-in filter
(`bayes`) classifies the message with each recipient account's own statistics, trained by its user only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings

from mailauth import bayes, queries, rspamd, verify
from mailauth.verify import Envelope
from mailboxes import asyncdb
from mailcore.fields import header_end

log = logging.getLogger("mailauth.junk")

# The built-in filter files a message as junk for an account from this spamicity on (mox's default is 0.95),
# and gives GTUBE a score above any reject threshold, as rspamd does.
BUILTIN_JUNK_SPAMICITY = 0.95
GTUBE_SCORE = 1000.0

_recent = queries.RecentJunkFacts()

# Our fields: copies arriving from outside are removed, so a sender cannot mark its own mail as clean.
SPAM_FIELDS = (b"X-Spam-Status", b"X-Spam", b"X-Spam-Score")
_FIELDS = re.compile(
    rb"(?im)^(?:" + b"|".join(re.escape(n) for n in SPAM_FIELDS) + rb")[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*(?:\r\n|$)"
)


@dataclass(frozen=True)
class JunkResult:
    """What the junk engine says: a score for the whole message (rspamd; GTUBE for either engine), or the
    built-in filter's spamicity for each recipient account that has trained it."""

    engine: str
    score: float | None = None
    symbols: tuple[str, ...] = ()
    spamicity: Mapping[int, float] = field(default_factory=dict)
    allowed: frozenset[int] = frozenset()  # accounts whose allow list names the sender
    blocked: frozenset[int] = frozenset()  # accounts whose block list names the sender

    def junk_for(self, account_ids: Sequence[int], *, message_is_junk: bool) -> frozenset[int]:
        """The accounts whose copy goes to Junk: the message's score says junk (`message_is_junk`), or the
        account's own statistics or block list do; never an account whose allow list names the sender."""
        accounts = set(account_ids) if message_is_junk else set()
        accounts |= {a for a, p in self.spamicity.items() if p >= BUILTIN_JUNK_SPAMICITY}
        accounts |= self.blocked
        return frozenset(accounts - self.allowed)


@dataclass(frozen=True)
class Lists:
    allowed: frozenset[int]
    blocked: frozenset[int]


def listed(rules: Sequence[tuple[str, bool]], senders: Sequence[str]) -> bool | None:
    """True when an allow entry names one of `senders`, False for a block entry, None for neither. Entries
    are addresses or domains (a domain covers its subdomains); an address entry beats a domain entry, and
    among equals a block beats an allow."""
    best: tuple[int, bool] | None = None
    for entry, allow in rules:
        for sender in senders:
            domain = sender.rpartition("@")[2]
            if entry == sender:
                rank = 2
            elif "@" not in entry and (domain == entry or domain.endswith("." + entry)):
                rank = 1
            else:
                continue
            if best is None or rank > best[0] or (rank == best[0] and not allow):
                best = (rank, allow)
    return None if best is None else best[1]


async def score(
    raw: bytes,
    envelope: Envelope,
    senders: Sequence[str],
    recipients: Sequence[str],
    account_ids: Sequence[int],
    queue_id: str,
) -> JunkResult | None:
    """rspamd's verdict when it is configured (None when it gave no answer in time), else the built-in one;
    with the recipients' allow and block lists applied to `senders` (MAIL FROM and From: addresses)."""
    url = settings.MAILSITE_RSPAMD_URL
    facts = await _recent.of(account_ids)
    verdicts = {a: listed(rules, senders) for a, rules in facts.rules.items()}
    lists = Lists(
        allowed=frozenset(a for a, v in verdicts.items() if v is True),
        blocked=frozenset(a for a, v in verdicts.items() if v is False),
    )
    if not url:
        return await _builtin(raw, facts, lists)
    request: dict[str, str | list[str]] = {"IP": envelope.ip, "Helo": envelope.helo, "Queue-Id": queue_id}
    request["From"] = envelope.sender or "<>"
    request["Rcpt"] = list(recipients)
    try:
        found = await rspamd.check(url, raw, request, limit=settings.MAILSITE_RSPAMD_TIMEOUT)
    except rspamd.RspamdUnavailable as exc:
        log.warning("rspamd unavailable, message delivered unscored queue_id=%s: %s", queue_id, exc)
        return None
    return JunkResult("rspamd", found.score, found.symbols, allowed=lists.allowed, blocked=lists.blocked)


async def _builtin(raw: bytes, facts: queries.JunkFacts, lists: Lists) -> JunkResult:
    if bayes.has_gtube(raw):
        return JunkResult("builtin", GTUBE_SCORE, ("GTUBE",), allowed=lists.allowed, blocked=lists.blocked)
    # Untrained accounts (most, until their users move mail into and out of Junk) cost no parse.
    if not facts.trained:
        return JunkResult("builtin", allowed=lists.allowed, blocked=lists.blocked)
    tokens = await asyncio.get_running_loop().run_in_executor(verify.executor(), bayes.tokens, raw)
    counts = await asyncdb.call(queries.token_counts, sorted(facts.trained), tokens)
    return JunkResult(
        "builtin",
        spamicity={
            account_id: value
            for account_id, (spam, ham) in facts.trained.items()
            if (value := bayes.spamicity(counts[account_id], tokens, spam, ham)) is not None
        },
        allowed=lists.allowed,
        blocked=lists.blocked,
    )


def remove_spam_fields(raw: bytes) -> bytes:
    end = header_end(raw)
    return _FIELDS.sub(b"", raw[:end]) + raw[end:]


def status_fields(flag: bool, value: float, required: float, *, engine: str, tests: Sequence[str] = ()) -> bytes:
    """SpamAssassin-style fields, which most clients and Sieve scripts understand."""
    word = "Yes" if flag else "No"
    names = ",".join(tests)[:500] or "none"
    return (
        f"X-Spam: {word}\r\n"
        f"X-Spam-Status: {word}, score={value:.2f} required={required:.2f} engine={engine}\r\n\ttests={names}\r\n"
    ).encode("ascii", "replace")


def fields_for(result: JunkResult, account_ids: Sequence[int], *, junk_score: float) -> bytes:
    """Our spam fields for the stored message: the message's score, or the one recipient account's
    spamicity (a body shared by several accounts' copies cannot carry each account's own verdict)."""
    if result.score is not None:
        return status_fields(
            result.score >= junk_score, result.score, junk_score, engine=result.engine, tests=result.symbols
        )
    if len(account_ids) == 1 and account_ids[0] in result.spamicity:
        value = result.spamicity[account_ids[0]]
        return status_fields(value >= BUILTIN_JUNK_SPAMICITY, value, BUILTIN_JUNK_SPAMICITY, engine=result.engine)
    return b""
