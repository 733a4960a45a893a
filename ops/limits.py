"""Limits shared by every listener process on every host, kept in Redis (the production broker).

Listeners are stateless and run on several hosts behind a balancer, so a count kept in one process or one
host's file would let a client have the limit once per host. With a Redis broker (MAILSITE_BROKER_URL
redis://...), these counts live there, under MAILSITE_LIMITS_PREFIX; with the embedded broker (one host,
`make run`) the callers keep local counts instead (`smtpd.connections`, `ops.rates`).

Connections per client IP are leases rather than counters: each open session is a member of its client's
sorted set, scored with the time (Redis' own clock, the same for every host) its lease ends. A process renews
the leases of its open sessions every third of MAILSITE_CONNECTION_LEASE, and removes a session's member once
it has ended and no session of the same client has taken its place over (`LeasedConnectionCounter.keep`). The
sessions of a process that dies (SIGKILL, a host lost) stop counting once their leases run out, without anyone
cleaning up; Postfix's anvil and Dovecot's anvil keep such counts in one daemon per host.

Redis being unreachable must not stop mail: a check that cannot reach it admits the connection and says so
in the log (the listener's own timeouts and error limits still apply).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import math
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

from mailboxes import asyncdb

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

    The listener awaits `admit` before its greeting; the round trips are made by a thread of this counter, so
    the event loop never waits for Redis, and the admissions, releases and renewals that arrive while one round
    trip is out go together in the next (one pipeline, in the order they came, so a session's removal never
    precedes its addition).

    A session that ends leaves its place (its member, still in Redis and renewed) to this process for `keep`
    seconds: the client's next session here takes it over with no round trip, and only a place nobody took is
    removed. Most senders open a connection per message, one after another or several at once, so a busy
    client's sessions mostly take over places instead of each costing an admission and a removal (measured: 0.6 ms
    of each greeting, and 10-20% of the listener's throughput at 20 connections at once). The count in Redis
    never falls short of the sessions open: an ended session only counts `keep` seconds longer, for a client
    that comes back on another host meanwhile.
    """

    keep = 1.0  # seconds

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
        # Client IP -> the places its ended sessions left here, (member, when it goes), oldest first; and every place
        # kept, (when it goes, client IP, member), oldest first, where one taken over meanwhile is skipped.
        self._kept: dict[str, collections.deque[tuple[str, float]]] = {}
        self._expiry: collections.deque[tuple[float, str, str]] = collections.deque()
        self._pending: list[_Admission | _Removal] = []  # for the thread's next round trip, in order
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    async def admit(self, ip: str) -> bool:
        """Whether the client may have one more session; counts it if so. A session that goes away while this
        waits (the client hung up, the listener stops) is taken out again: its member is removed whether or not
        Redis had added it yet."""
        if self._closing:  # a session the listener accepted as it stopped: counted nowhere, like Redis down
            return True
        with self._wake:
            kept = self._kept.get(ip)
            if kept:
                member, _ = kept.pop()  # the latest: the one longest before its removal
                if not kept:
                    del self._kept[ip]
                self._held.setdefault(ip, []).append(member)
                return True
        member = f"{self._owner}:{next(self._numbers)}"
        admission = _Admission(key("connections", ip), member, asyncio.get_running_loop().create_future())
        self._send(admission)
        try:
            admitted = await admission.answer
        except BaseException:
            self._send(_Removal(admission.key, member))
            raise
        if admitted:
            with self._wake:
                self._held.setdefault(ip, []).append(member)
        return admitted

    def release(self, ip: str) -> None:
        """The session is over: its place is kept for the client's next session here (`keep`)."""
        with self._wake:
            members = self._held.get(ip)
            if not members:
                return
            member = members.pop()
            if not members:
                del self._held[ip]
            if not self._expiry:
                self._wake.notify()  # the thread's wait must end when this place goes
            goes = time.monotonic() + self.keep
            self._kept.setdefault(ip, collections.deque()).append((member, goes))
            self._expiry.append((goes, ip, member))

    def close(self) -> None:
        """The listeners have stopped: the sessions still open and the places kept stop counting (their members
        are removed), and the thread ends after that round trip; nothing is renewed any more."""
        with self._wake:
            self._closing = True
            self._pending.extend(_Removal(name, member) for name, member in self._counted())
            self._held.clear()
            self._kept.clear()
            self._expiry.clear()
            self._wake.notify()

    def _send(self, work: _Admission | _Removal) -> None:
        with self._wake:
            self._pending.append(work)
            self._wake.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._keep, name="connection-leases", daemon=True)
                self._thread.start()

    def _keep(self) -> None:
        """Make the round trips: what is pending as it comes, the removal of places kept past their time, and the
        renewal of the open sessions' and kept places' leases every third of a lease."""
        renew_at = time.monotonic() + self.lease / 3
        while True:
            with self._wake:
                # Until there is work, a renewal is due or a kept place goes (a release may bring that time nearer).
                while not (self._pending or self._closing):
                    wait = min(renew_at, self._kept_until()) - time.monotonic()
                    if wait <= 0:
                        break
                    self._wake.wait(timeout=wait)
                now = time.monotonic()
                pending, self._pending = self._pending + self._kept_past(now), []
                renewing = now >= renew_at
                held = self._counted() if renewing else []
                closing = self._closing
            # An admission whose session has gone already is not made (its removal follows in `pending`).
            work = [w for w in pending if isinstance(w, _Removal) or not w.answer.cancelled()]
            if renewing:
                renew_at = time.monotonic() + self.lease / 3
            if not work and not held:
                if closing:
                    return
                continue
            try:
                results = self._round_trip(work, held)
            except redis.RedisError as exc:
                # Not counted: admitted all the same, so that Redis being down stops no mail. Leases not renewed
                # run out; removals not made are harmless (the members time out).
                log.warning("connection limits unchecked reason=%r", f"redis: {exc}")
                results = [True] * len(work)
            for w, result in zip(work, results, strict=True):
                if isinstance(w, _Admission):
                    asyncdb.settle_from_thread(w.answer, bool(result))

    def _counted(self) -> list[tuple[str, str]]:
        """(key, member) of every place this process counts in Redis: open sessions' and kept ones; called holding
        `_wake`."""
        members = [(ip, member) for ip, held in self._held.items() for member in held]
        members += [(ip, member) for ip, kept in self._kept.items() for member, _ in kept]
        return [(key("connections", ip), member) for ip, member in members]

    def _kept_until(self) -> float:
        """When the oldest kept place goes (infinity with none); called holding `_wake`."""
        return self._expiry[0][0] if self._expiry else math.inf

    def _kept_past(self, now: float) -> list[_Admission | _Removal]:
        """The removals of the places kept past their time, taken out of `_kept`; called holding `_wake`."""
        removals: list[_Admission | _Removal] = []
        while self._expiry and self._expiry[0][0] <= now:
            goes, ip, member = self._expiry.popleft()
            kept = self._kept.get(ip)
            # A client's places are taken over latest first, so its oldest is the first left, if not taken.
            if kept and kept[0] == (member, goes):
                kept.popleft()
                if not kept:
                    del self._kept[ip]
                removals.append(_Removal(key("connections", ip), member))
        return removals

    def _round_trip(self, work: list[_Admission | _Removal], held: list[tuple[str, str]]) -> list[object]:
        try:
            return self._pipelined(work, held)
        except redis.exceptions.NoScriptError:
            # Redis lost its scripts (restarted, SCRIPT FLUSH): load them and send again. Only the scripts failed
            # (the same two in every call), and ZREM of a member already gone is harmless.
            for script in (self._acquire, self._renew):
                self._redis.script_load(script.script)
            return self._pipelined(work, held)

    def _pipelined(self, work: list[_Admission | _Removal], held: list[tuple[str, str]]) -> list[object]:
        # EVALSHA by hand: a Script object called on a pipeline asks Redis for SCRIPT EXISTS before every
        # pipeline, one more round trip ahead of each greeting.
        with self._redis.pipeline(transaction=False) as pipe:
            for w in work:
                if isinstance(w, _Admission):
                    pipe.evalsha(self._acquire.sha, 1, w.key, self.limit, w.member, self.lease)
                else:
                    pipe.zrem(w.key, w.member)
            if held:
                keys, members = [name for name, _ in held], [member for _, member in held]
                pipe.evalsha(self._renew.sha, len(keys), *keys, self.lease, *members)
            return pipe.execute()[: len(work)]


@dataclass
class _Admission:
    key: str
    member: str
    answer: asyncio.Future[bool]  # the session's, in its event loop


@dataclass
class _Removal:
    key: str
    member: str


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
