"""DNS for message authentication: dnspython with the configured resolver, bounded time and bounded answers.

Unlike the relay's MX lookups, verification caches answers (an LRU cache honouring TTLs): the same SPF, DKIM
key and DMARC records are asked for by every message from a sender, and a stale policy record for a TTL is
what every resolver serves anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings

# Bounds for hostile zones: a TXT answer is used only up to these sizes (RFC 7208 3.4 asks SPF records to fit
# 450 octets; the largest DKIM keys in use, RSA 4096, take about 800), larger answers count as malformed.
MAX_TXT_RECORDS = 20
MAX_TXT_OCTETS = 8192
CACHE_ENTRIES = 10_000


T = TypeVar("T")


class TemporaryDnsError(Exception):
    """Timeout, SERVFAIL or an unreachable server: the answer may be different a little later."""


class NotCached(TemporaryDnsError):
    """Within `cached_only`, an answer the cache does not hold."""


_cached_only: ContextVar[list[str] | None] = ContextVar("mailauth_cached_only", default=None)


@contextmanager
def cached_only() -> Iterator[list[str]]:
    """Within: lookups are answered from the cache of positive answers only, never the network, so the caller
    may run on the event loop. A miss raises NotCached, which every check treats as a temporary failure, and is
    recorded in the yielded list: a caller that finds it non-empty discards what it computed and asks again
    with DNS. (Recording, not only raising, because pyspf swallows some exceptions whole.)"""
    misses: list[str] = []
    token = _cached_only.set(misses)
    try:
        yield misses
    finally:
        _cached_only.reset(token)


_lock = threading.Lock()
_resolvers: dict[tuple, dns.resolver.Resolver] = {}


def resolver() -> dns.resolver.Resolver:
    """The process's resolver for the current settings (tests change them; each setting gets its own)."""
    nameservers = tuple(settings.MAILSITE_DNS_NAMESERVERS)
    timeout = float(settings.MAILSITE_DNS_TIMEOUT)
    key = (nameservers, timeout)
    with _lock:
        found = _resolvers.get(key)
        if found is None:
            found = dns.resolver.Resolver(configure=not nameservers)
            if nameservers:
                found.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
            found.timeout = timeout
            found.lifetime = timeout
            found.cache = dns.resolver.LRUCache(CACHE_ENTRIES)
            _resolvers[key] = found
        return found


# Positive answers by (name, type), in front of dnspython's own cache: a hit there still costs a name parse and
# the resolver's bookkeeping, about a tenth of a millisecond, several times per message.
_answers: dict[tuple[str, str], tuple[float, list]] = {}
MAX_TTL = 300


# Results computed from DNS answers only (an SPF evaluation for one envelope), kept as long as such answers.
_results: dict[tuple, tuple[float, object]] = {}
RESULT_TTL = 60.0


def remembered(key: tuple, compute: Callable[[], T], *, keep: Callable[[T], bool]) -> T:
    """`compute()`, or its value from the last RESULT_TTL seconds for the same key; values for which
    `keep` is false (temporary failures) are not remembered."""
    found = _results.get(key)
    if found is not None and found[0] > time.monotonic():
        return found[1]  # type: ignore[return-value]
    value = compute()
    if keep(value) and not _cached_only.get():  # a result computed around a cache miss may be incomplete
        if len(_results) >= CACHE_ENTRIES:
            _results.clear()
        _results[key] = (time.monotonic() + RESULT_TTL, value)
    return value


def forget_cached_answers() -> None:
    """Drop every cached answer (tests that change a zone between messages)."""
    with _lock:
        _answers.clear()
        _results.clear()
        for item in _resolvers.values():
            if item.cache is not None:
                item.cache.flush()


def lookup(name: str, rdtype: str, *, timeout: float | None = None) -> list:
    """The rdatas of `name`/`rdtype`; [] for NXDOMAIN or no data; TemporaryDnsError otherwise."""
    key = (name.lower(), rdtype)
    cached = _answers.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    misses = _cached_only.get()
    if misses is not None:
        misses.append(f"{rdtype} {name}")
        raise NotCached(f"{rdtype} {name}: not cached")
    try:
        answer = resolver().resolve(
            dns.name.from_text(name), rdtype, raise_on_no_answer=False, search=False, lifetime=timeout
        )
    except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN, dns.name.NameTooLong, dns.name.LabelTooLong):
        return []
    except dns.resolver.NoNameservers as exc:
        raise TemporaryDnsError(f"{rdtype} {name}: SERVFAIL") from exc
    except (dns.exception.Timeout, dns.resolver.LifetimeTimeout) as exc:
        raise TemporaryDnsError(f"{rdtype} {name}: timeout") from exc
    except dns.exception.DNSException as exc:  # a malformed answer: as good as none, but may be fixed
        raise TemporaryDnsError(f"{rdtype} {name}: {exc.__class__.__name__}") from exc
    if answer.rrset is None:
        return []
    found = list(answer.rrset)
    if len(_answers) >= CACHE_ENTRIES:
        _answers.clear()  # crude, but bounded; the next messages refill what is in use
    _answers[key] = (time.monotonic() + min(answer.rrset.ttl, MAX_TTL), found)
    return found


class OversizedAnswer(Exception):
    """A TXT answer beyond MAX_TXT_RECORDS or MAX_TXT_OCTETS."""


def txt(name: str, *, timeout: float | None = None) -> list[bytes]:
    """Each TXT record of `name` with its strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2)."""
    records = lookup(name, "TXT", timeout=timeout)
    if len(records) > MAX_TXT_RECORDS:
        raise OversizedAnswer(f"{name}: {len(records)} TXT records")
    joined = [b"".join(record.strings) for record in records]
    if sum(len(value) for value in joined) > MAX_TXT_OCTETS:
        raise OversizedAnswer(f"{name}: TXT answer over {MAX_TXT_OCTETS} octets")
    return joined
