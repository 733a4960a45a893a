"""Pure relay decisions: when to retry, when to give up, and what a reply or failure means for a recipient.

Nothing here touches the database, the network or the clock; callers pass the current time in.
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in "90", "90s", "15m", "4h" or "5d"."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 4h or 5d")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_schedule(text: str) -> tuple[int, ...]:
    """Comma-separated durations, e.g. "1m,5m,15m,30m,1h"; the last one repeats."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError("a retry schedule needs at least one duration")
    return tuple(parse_duration(item) for item in items)


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[int, ...] = (60, 300, 900, 1800, 3600)  # seconds after each failed attempt; last repeats
    max_age: int = 5 * 86400  # give up on a recipient this long after the message was queued
    delay_warning: int = 4 * 3600  # tell the sender the message is delayed once it is this old

    def delay_after(self, attempts: int) -> int:
        """Seconds to wait after the `attempts`-th failed attempt (1-based)."""
        return self.schedule[min(max(attempts, 1), len(self.schedule)) - 1]

    def next_attempt(self, now: datetime.datetime, attempts: int) -> datetime.datetime:
        return now + datetime.timedelta(seconds=self.delay_after(attempts))

    def gives_up(self, queued: datetime.datetime, now: datetime.datetime) -> bool:
        return now - queued >= datetime.timedelta(seconds=self.max_age)

    def warns_delay(self, queued: datetime.datetime, now: datetime.datetime, warned: bool) -> bool:
        return not warned and now - queued >= datetime.timedelta(seconds=self.delay_warning)


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # try again later
    BOUNCED = "bounced"  # permanent failure: the sender gets a DSN


def outcome_for_code(code: int) -> Outcome:
    """RFC 5321 4.2.1: 2yz completes, 4yz is transient, 5yz is permanent. Anything else is treated as transient."""
    if 200 <= code < 300:
        return Outcome.DELIVERED
    if 500 <= code < 600:
        return Outcome.BOUNCED
    return Outcome.DEFERRED


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(code: int, text: str) -> str:
    """The RFC 3463 status for a DSN: the one the server gave, else one derived from the reply code."""
    match = _ENHANCED.match(text.strip())
    if match and match.group(1) == str(code)[0]:
        return ".".join(match.groups())
    if 200 <= code < 300:
        return "2.0.0"
    if 500 <= code < 600:
        return "5.0.0"
    return "4.0.0"


def next_mx_after_session_failure(code: int | None) -> bool:
    """Whether a failure of the whole session (not of one recipient) sends the remaining recipients to the next MX.

    Connection failures, timeouts and 4yz session replies do (RFC 5321 5.1: try the other MX hosts); a 5yz reply to
    MAIL FROM or DATA is the answer for the message and does not.
    """
    return code is None or not 500 <= code < 600
