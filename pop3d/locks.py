"""The maildrop lock (RFC 1939 8: one session per maildrop), shared by every POP3 process.

On PostgreSQL each listener process keeps one dedicated connection and takes a session-level advisory lock on
it per logged-in maildrop. PostgreSQL drops a session's advisory locks when its connection ends, so a process
that dies (or is killed) releases its maildrops at once: there is no expiry to tune and no stale lock row to
clean up. Advisory locks are re-entrant within one connection, so the process also keeps the set it holds and
refuses a second session of its own. The connection is used from one dedicated thread, never from the pool of
`mailboxes.asyncdb`, whose connections are closed and replaced between calls.

On SQLite (single-machine setups, one `runmail` process) the in-process set is the whole lock.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import psycopg
from django.db import connections

log = logging.getLogger(__name__)

# Advisory lock keys are one 64-bit space per database; this prefix ("POP3") keeps ours apart from others'.
_NAMESPACE = 0x504F5033 << 32


def lock_key(account_id: int) -> int:
    """The PostgreSQL advisory lock key of an account's maildrop."""
    return _NAMESPACE + account_id


class MaildropLocks:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pop3-locks")
        self._held: set[int] = set()  # only touched in the executor's one thread
        self._conn: psycopg.Connection | None = None

    async def acquire(self, account_id: int) -> bool:
        """Lock the account's maildrop; False when another session (in any process) holds it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._acquire, account_id)

    async def release(self, account_id: int) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._release, account_id)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=True)

    def _acquire(self, account_id: int) -> bool:
        if account_id in self._held:
            return False
        if connections["default"].vendor == "postgresql":
            try:
                locked = self._try_lock(self._connection(), account_id)
            except psycopg.Error:
                self._disconnect()
                raise
            if not locked:
                return False
        self._held.add(account_id)
        return True

    def _release(self, account_id: int) -> None:
        if account_id not in self._held:
            return
        self._held.discard(account_id)
        if self._conn is not None:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(account_id)])
            except psycopg.Error:
                # The lock went with the broken connection; the next acquire reconnects.
                self._disconnect()

    @staticmethod
    def _try_lock(conn: psycopg.Connection, account_id: int) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(account_id)]).fetchone()
        return bool(row and row[0])

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            params = connections["default"].settings_dict
            self._conn = psycopg.connect(
                dbname=params["NAME"],
                user=params["USER"] or None,
                password=params["PASSWORD"] or None,
                host=params["HOST"] or None,
                port=params["PORT"] or None,
                autocommit=True,
            )
            # Locks held before the connection broke were lost with it: take them again for the sessions
            # still running, and say so if another process got in first.
            for account_id in list(self._held):
                if not self._try_lock(self._conn, account_id):
                    log.warning("pop3: maildrop lock of account %s lost while the database was away", account_id)
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
