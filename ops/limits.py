"""Limits shared by every listener process on every host, kept in Redis (the production broker).

Listeners are stateless and run on several hosts behind a balancer, so a count kept in one process or one
host's file would let a client have the limit once per host. With a Redis broker (MAILSITE_BROKER_URL
redis://...), these counts live there, under MAILSITE_LIMITS_PREFIX; with the embedded broker (one host,
`make run`) the callers keep local counts instead (`smtpd.connections`, `ops.rates`).

Connections per client IP are leases rather than counters: each open session is a member of its client's
sorted set, scored with the time (Redis' own clock, the same for every host) its lease ends. A process renews
the leases of its open sessions every third of MAILSITE_CONNECTION_LEASE, and removes a session's member when
it ends. The sessions of a process that dies (SIGKILL, a host lost) stop counting once their leases run out,
without anyone cleaning up; Postfix's anvil and Dovecot's anvil keep such counts in one daemon per host.

Redis being unreachable must not stop mail: a check that cannot reach it admits the connection and says so
in the log (the listener's own timeouts and error limits still apply).
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import socket
import threading
import time
from functools import cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

TIMEOUT = 0.25  # seconds a limit check may hold up its listener waiting for Redis before admitting anyway

# KEYS[1]: the client's set; ARGV: limit, member, lease seconds. 1 if admitted.
_ACQUIRE = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
# KEYS: sets; ARGV[1]: lease seconds, then one member per key. Renews leases that still exist.
_RENEW = """
local now = tonumber(redis.call('TIME')[1])
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + lease, ARGV[i + 1]) == 1 then
    redis.call('EXPIRE', key, lease)
  end
end
return 0
"""


def shared() -> bool:
    """Whether limits are kept in Redis (the broker is Redis) rather than on this host."""
    return settings.MAILSITE_BROKER_URL.startswith(("redis://", "rediss://"))


def client() -> redis.Redis:
    return _client(settings.MAILSITE_BROKER_URL)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, health_check_interval=30)


def key(*parts: str) -> str:
    return settings.MAILSITE_LIMITS_PREFIX + ":".join(parts)


class LeasedConnectionCounter:
    """`policy.ConnectionCounter`'s interface over Redis: concurrent sessions per client IP on every host.

    `acquire` is one round trip, made where the listener asks (it answers whether the client is admitted).
    Releases are handed to a thread of this counter, which removes them in batches and renews the leases, so
    the end of a session costs the listener's event loop no round trip.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lease = settings.MAILSITE_CONNECTION_LEASE
        self._redis = client()
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        # Members name the host and process, so a look at Redis shows whose sessions count.
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._numbers = itertools.count()
        self._held: dict[str, list[str]] = {}  # client IP -> members of its open sessions here
        self._released: list[tuple[str, str]] = []  # (key, member) for the thread to remove
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def acquire(self, ip: str) -> bool:
        member = f"{self._owner}:{next(self._numbers)}"
        try:
            admitted = bool(self._acquire(keys=[key("connections", ip)], args=[self.limit, member, self.lease]))
        except redis.RedisError as exc:
            log.warning("connection limit unchecked client=%s reason=%r", ip, f"redis: {exc}")
            admitted = True  # its member is not in Redis; removing it at release is harmless
        if admitted:
            with self._wake:
                self._held.setdefault(ip, []).append(member)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._keep, name="connection-leases", daemon=True)
                    self._thread.start()
        return admitted

    def release(self, ip: str) -> None:
        with self._wake:
            members = self._held.get(ip)
            if not members:
                return
            member = members.pop()
            if not members:
                del self._held[ip]
            self._released.append((key("connections", ip), member))
            self._wake.notify()

    def _keep(self) -> None:
        """Remove released sessions as they come, and renew the open ones every third of a lease."""
        renew_at = time.monotonic() + self.lease / 3
        while True:
            with self._wake:
                self._wake.wait_for(lambda: bool(self._released), timeout=max(0.0, renew_at - time.monotonic()))
                released, self._released = self._released, []
                held = [(key("connections", ip), member) for ip, members in self._held.items() for member in members]
            try:
                if released:
                    with self._redis.pipeline(transaction=False) as pipe:
                        for name, member in released:
                            pipe.zrem(name, member)
                        pipe.execute()
                if time.monotonic() >= renew_at:
                    renew_at = time.monotonic() + self.lease / 3
                    if held:
                        self._renew(keys=[name for name, _ in held], args=[self.lease, *(m for _, m in held)])
            except redis.RedisError as exc:  # leases not renewed run out; released ones sooner or later
                log.warning("connection leases not kept reason=%r", f"redis: {exc}")


# MAILSITE_SUBMISSION_RATE, over: Postfix's anvil answers a client over its message rate so, at MAIL FROM.
SUBMISSION_RATE_EXCEEDED = "450 4.7.1 Error: too much mail from this account; try again later"

# KEYS[1]: the window's counter; ARGV[1]: the window in seconds. The count including this message.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
end
return n
"""


class SubmissionRate:
    """Messages per account per fixed window (MAILSITE_SUBMISSION_RATE), counted at each submission MAIL FROM
    as Postfix's anvil counts message delivery requests: in Redis for every host, or in this process when the
    broker is embedded (one host; with MAILSITE_SMTP_PROCESSES > 1 each process then allows the rate)."""

    def __init__(self, count: int, window: int) -> None:
        self.count = count
        self.window = window
        self._slot = 0
        self._local: dict[int, int] = {}  # account id -> messages in window `_slot`, without Redis
        self._script = client().register_script(_COUNT) if shared() else None

    def allow(self, account_id: int) -> bool:
        """Count a message of this account; False once it is over the rate for the current window."""
        slot = int(time.time()) // self.window
        if self._script is None:
            if slot != self._slot:
                self._slot, self._local = slot, {}
            sent = self._local[account_id] = self._local.get(account_id, 0) + 1
            return sent <= self.count
        try:
            sent = int(self._script(keys=[key("submission", str(account_id), str(slot))], args=[self.window]))
        except redis.RedisError as exc:
            log.warning("submission rate unchecked account=%s reason=%r", account_id, f"redis: {exc}")
            return True
        return sent <= self.count


_rates: dict[tuple[int, int], SubmissionRate] = {}


def submission_rate() -> SubmissionRate | None:
    """This process's count for MAILSITE_SUBMISSION_RATE (one for every submission port), None without a limit."""
    rate = settings.MAILSITE_SUBMISSION_RATE
    if rate is None:
        return None
    if rate not in _rates:
        _rates[rate] = SubmissionRate(*rate)
    return _rates[rate]
