"""Concurrent connections per client IP, counted across all listener processes of one `manage.py smtpd`.

With MAILSITE_SMTP_PROCESSES > 1 the kernel spreads one client's connections over several processes, so a count
kept in each process would let a client hold the limit once per process. The parent process therefore creates
a table of counters in a file, one row per listener process and `BUCKETS` counters per row, and hands each
child its row in the environment (`ENV`, "path:row:rows"). A process counts its own connections in its row; to
admit one more it adds up that client's bucket over every row while holding a lock on the bucket (fcntl), so
two processes cannot both take the last place. When a child exits, the parent zeroes its row, so the
connections of a crashed process do not stay counted. (Postfix and Dovecot keep such counts in their anvil
service; nginx's limit_conn in shared memory.)

An IP is hashed to its bucket, so two clients whose addresses share a bucket also share a count: with 65,536
buckets that is rare, and at worst such a client is refused a little early, with the same 421 as at its limit.
A lone process (`runmail`, or one listener process) uses `policy.ConnectionCounter` instead. Both are for the
embedded broker on one host: with a Redis broker the count is shared by every host (`ops.limits`).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import zlib
from pathlib import Path

from ops import limits
from smtpd import policy

ENV = "MAILSITE_SMTP_CONNECTION_TABLE"
BUCKETS = 65536
_COUNT = struct.Struct("<I")


def create_table(path: Path, rows: int) -> None:
    """The parent's part: a zeroed table for `rows` listener processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as table:
        table.truncate(rows * BUCKETS * _COUNT.size)


def clear_row(path: Path, row: int) -> None:
    """Forget every connection counted by the process that had `row` (it has exited)."""
    with path.open("r+b") as table:
        table.seek(row * BUCKETS * _COUNT.size)
        table.write(bytes(BUCKETS * _COUNT.size))


def child_environment(path: Path, row: int, rows: int) -> dict[str, str]:
    return {ENV: f"{path}:{row}:{rows}"}


class SharedConnectionCounter:
    """`policy.ConnectionCounter`'s interface over the table shared by the listener processes."""

    def __init__(self, limit: int, path: Path, row: int, rows: int) -> None:
        self.limit = limit
        self.row = row
        self.rows = rows
        # Open for the life of the process (a raw descriptor: the locks are taken on it).
        self._fd = os.open(path, os.O_RDWR)
        self._table = mmap.mmap(self._fd, rows * BUCKETS * _COUNT.size)

    def _offset(self, row: int, bucket: int) -> int:
        return (row * BUCKETS + bucket) * _COUNT.size

    def _count(self, row: int, bucket: int) -> int:
        return _COUNT.unpack_from(self._table, self._offset(row, bucket))[0]

    def _add(self, bucket: int, delta: int) -> None:
        offset = self._offset(self.row, bucket)
        _COUNT.pack_into(self._table, offset, max(0, _COUNT.unpack_from(self._table, offset)[0] + delta))

    def acquire(self, ip: str) -> bool:
        bucket = _bucket(ip)
        # The lock covers this bucket's counter in row 0: one lock per bucket, whichever process asks.
        fcntl.lockf(self._fd, fcntl.LOCK_EX, _COUNT.size, self._offset(0, bucket))
        try:
            if self.limit > 0 and sum(self._count(row, bucket) for row in range(self.rows)) >= self.limit:
                return False
            self._add(bucket, 1)
            return True
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, _COUNT.size, self._offset(0, bucket))

    async def admit(self, ip: str) -> bool:
        return self.acquire(ip)

    def release(self, ip: str) -> None:
        # Only this process writes its row; an acquire elsewhere reading it meanwhile sees one count too many
        # at worst, and refuses a connection the limit would just have allowed.
        self._add(_bucket(ip), -1)


def _bucket(ip: str) -> int:
    return zlib.crc32(ip.encode()) % BUCKETS  # the same in every process (unlike hash())


ConnectionCounter = policy.ConnectionCounter | SharedConnectionCounter | limits.LeasedConnectionCounter


def for_this_process(limit: int) -> ConnectionCounter:
    """The count every host shares in Redis; without Redis, the table of a multi-process `manage.py smtpd`, or
    else a counter of our own."""
    if limits.shared():
        return limits.LeasedConnectionCounter(limit)
    handed = os.environ.get(ENV)
    if not handed:
        return policy.ConnectionCounter(limit)
    path, row, rows = handed.rsplit(":", 2)
    return SharedConnectionCounter(limit, Path(path), int(row), int(rows))
