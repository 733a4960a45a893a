"""Dead destinations, as Postfix's queue manager keeps them: after MAILSITE_RELAY_DEAD_AFTER attempts in a row
in which no host of a destination could be reached (no SMTP reply from any of them), the destination is dead for
MAILSITE_RELAY_DEAD_TIME. Its mail is then deferred without connecting, so a destination that is down costs one
connection timeout per host every few minutes instead of one per queued message. Any SMTP reply from one of its
hosts, or ETRN for the domain, brings it back.

A destination is a recipient domain, or a route's host and port (`relay.routes.Smarthost.key`). With a Redis
broker the state is shared by every worker on every host (keys under MAILSITE_LIMITS_PREFIX, ended by Redis
expiry); with the embedded broker (one host) each worker process keeps its own. Redis unreachable: the
destination counts as alive and a line is logged, since this only saves connections and must never stop mail.
"""

from __future__ import annotations

import logging
import time

import redis
from django.conf import settings

from ops import limits

log = logging.getLogger("mail.relay")

# A run of failures is forgotten after an hour without another one: "in a row" within a retry schedule.
FAILURES_KEPT = 3600

# KEYS: failures, dead; ARGV: threshold, dead seconds, failures kept. The dead time left in ms, or 0.
_FAILED = """
local failures = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
if failures >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[2]))
  return tonumber(ARGV[2]) * 1000
end
return 0
"""

_local_failures: dict[str, int] = {}
_local_dead: dict[str, float] = {}


def _keys(destination: str) -> tuple[str, str]:
    return limits.key("relay-failures", destination), limits.key("relay-dead", destination)


def dead_until(destination: str) -> float | None:
    """The time (as time.time()) until which `destination` is dead, or None when it may be tried."""
    if not limits.shared():
        until = _local_dead.get(destination)
        return until if until is not None and until > time.time() else None
    try:
        left = limits.client().pttl(_keys(destination)[1])
    except redis.RedisError as exc:
        log.warning("relay dead-destination state unread destination=%s reason=%r", destination, f"redis: {exc}")
        return None
    return time.time() + left / 1000 if left > 0 else None


def unreachable(destination: str) -> float | None:
    """Count an attempt that reached no host; the time until which the destination is now dead, if it is."""
    threshold, seconds = settings.MAILSITE_RELAY_DEAD_AFTER, settings.MAILSITE_RELAY_DEAD_TIME
    if not limits.shared():
        failures = _local_failures[destination] = _local_failures.get(destination, 0) + 1
        if failures < threshold:
            return None
        del _local_failures[destination]
        until = _local_dead[destination] = time.time() + seconds
        return until
    try:
        script = limits.client().register_script(_FAILED)
        left = int(script(keys=_keys(destination), args=[threshold, seconds, FAILURES_KEPT]))
    except redis.RedisError as exc:
        log.warning("relay dead-destination state unkept destination=%s reason=%r", destination, f"redis: {exc}")
        return None
    return time.time() + left / 1000 if left else None


def reached(destination: str) -> None:
    """A host of `destination` answered: the run of failures ends, and the destination is alive (ETRN too)."""
    if not limits.shared():
        _local_failures.pop(destination, None)
        _local_dead.pop(destination, None)
        return
    try:
        limits.client().delete(*_keys(destination))
    except redis.RedisError as exc:
        log.warning("relay dead-destination state unkept destination=%s reason=%r", destination, f"redis: {exc}")
