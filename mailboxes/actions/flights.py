"""A transaction sent to PostgreSQL in flights (psycopg's pipeline mode): for a writer that takes a folder's lock,
such as IMAP's STORE and EXPUNGE.

As statements one by one, BEGIN, the lock, the read, the write and COMMIT are five round trips, and the folder's
lock is held across three of them; under load each also waits for the listener's GIL, and every other writer of
the folder waits meanwhile. When one statement can decide the writes itself (it runs after the lock, in the
same transaction), BEGIN, the lock, that statement and COMMIT are one flight, and the lock is held only while
PostgreSQL runs them. When the listener must decide, BEGIN, the lock and the read go together, then the write and
COMMIT: the lock is held across one trip to the listener. Each statement still takes its own snapshot (READ
COMMITTED), so what runs after the lock sees everything committed before it was granted.

`usable()` says where a writer may run statements of its own as their own transaction, as these and `direct` do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper
from psycopg.pq import TransactionStatus

from mailboxes.actions import locks
from mailboxes.actions.errors import NotFound


def usable() -> bool:
    """Whether a writer may run its own transaction or statement here: on PostgreSQL, outside any transaction
    (within one, a failing statement would end the enclosing transaction too)."""
    return connection.vendor == "postgresql" and connection.get_autocommit()


class Flights:
    """The open transaction: `send` queues a statement and gives the cursor to read its rows from (reading sends
    what is queued and waits for all of it); `commit` queues COMMIT, sent when the transaction's block ends."""

    def __init__(self) -> None:
        self.committing = False
        self._folder: CursorWrapper | None = None

    def send(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> CursorWrapper:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        return cursor

    def lock_folder(self, folder: int, owner: int, *, account: bool = False) -> None:
        """Queue the locks of `owner`'s folder and, with `account`, of that account (`locks.owned_folder_locks`):
        the statements sent after them run under the locks. `require_folder` then says whether it was theirs."""
        self._folder, *_ = [
            self.send(*statement) for statement in locks.owned_folder_locks(folder, owner, account=account)
        ]

    def require_folder(self) -> None:
        """NotFound unless the folder of `lock_folder` is the owner's (in the block, this sends what is queued; the
        statements sent with the lock found nothing of another account's either)."""
        assert self._folder is not None, "require_folder() without lock_folder()"
        if not self._folder.fetchall():
            raise NotFound("no such folder")

    def commit(self) -> None:
        self.send("COMMIT", [])
        self.committing = True


@contextlib.contextmanager
def transaction() -> Iterator[Flights]:
    """One transaction in flights. Its block ends with `commit()` or an exception (which rolls it back); the rows
    of statements sent with the COMMIT are read after the block."""
    flights = Flights()
    connection.ensure_connection()
    pg = connection.connection
    try:
        # Errors raised as the pipeline ends (a statement sent with the COMMIT) as Django's, like the others.
        with connection.wrap_database_errors, pg.pipeline():
            flights.send("BEGIN", [])
            yield flights
            if not flights.committing:
                raise RuntimeError("a transaction in flights ended without commit()")
    finally:
        if pg.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")


def read(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """The rows of these reads: where `usable()`, sent together in one flight (one round trip, one snapshot), else
    one by one."""
    if not usable():
        found = []
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(*statement)
                found.append(cursor.fetchall())
        return found
    with transaction() as flight:
        cursors = [flight.send(*statement) for statement in statements]
        flight.commit()
    return [cursor.fetchall() for cursor in cursors]
