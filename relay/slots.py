"""Per-destination concurrency: at most N SMTP sessions to one recipient domain at once, across every worker
process on every host (Postfix's default_destination_concurrency_limit, 20, with per-domain overrides).

A session holds one of the domain's N slots: a PostgreSQL session-level advisory lock on the worker's database
connection. PostgreSQL drops a connection's advisory locks when it ends, so a worker killed mid-session never
leaves a slot taken. SQLite runs on one host with one worker; there the worker's own concurrency is the limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

# The two-int advisory lock key space is apart from the one-bigint space other locks use (PostgreSQL 9.6+ docs,
# "Advisory Lock Functions"); the domain's hash is the first key and the slot number the second.


def limit_for(domain: str) -> int:
    """How many sessions the relay may hold to `domain` at once."""
    limits: dict[str, int] = settings.MAILSITE_RELAY_DESTINATION_CONCURRENCY
    return limits.get(domain.lower(), settings.MAILSITE_RELAY_CONCURRENCY)


def _domain_key(domain: str) -> int:
    digest = hashlib.blake2b(domain.lower().encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def slot(domain: str) -> Iterator[bool]:
    """Hold one of `domain`'s session slots for the block; yields False when all are taken."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = _domain_key(domain)
    with connection.cursor() as cursor:
        for number in range(limit_for(domain)):
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [key, number])
            if cursor.fetchone()[0]:
                break
        else:
            number = -1
    if number < 0:
        yield False
        return
    try:
        yield True
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [key, number])
