"""The database threads every listener reaches the store through (`mailboxes.asyncdb`), on real PostgreSQL:
answers and errors reach the caller, threads start only as needed and never beyond MAILSITE_DB_THREADS, a step
whose caller went away before it started is not run, and shutdown closes each thread's connection."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection

from mailboxes import asyncdb

_asked_by: contextvars.ContextVar[str] = contextvars.ContextVar("asked_by", default="nobody")


@pytest.fixture
def two_threads(transactional_db, settings) -> Iterator[None]:
    asyncdb.shutdown()
    settings.MAILSITE_DB_THREADS = 2
    yield
    asyncdb.shutdown()


def _backend() -> tuple[str, int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [(pid,)] = cursor.fetchall()
    return threading.current_thread().name, pid, _asked_by.get()


def _fail() -> None:
    raise LookupError("no such thing")


def _threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("mail-db")}


def _still_running(pids: list[int]) -> int:
    """How many of these backends PostgreSQL still runs."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
        [(count,)] = cursor.fetchall()
    return count


def test_answers_errors_and_the_callers_context_reach_the_caller(two_threads) -> None:
    async def steps() -> tuple[str, int, str]:
        _asked_by.set("session 7")
        answer = await asyncdb.call(_backend)
        with pytest.raises(LookupError, match="no such thing"):
            await asyncdb.call(_fail)
        return answer

    name, pid, asked_by = asyncio.run(steps())
    assert name.startswith("mail-db")
    assert asked_by == "session 7"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone() != (pid,), "the step ran on the thread's own connection"


def test_threads_start_as_needed_up_to_the_setting(two_threads) -> None:
    release = threading.Event()

    def held() -> str:
        release.wait(10)
        return threading.current_thread().name

    async def one_at_a_time() -> set[str]:
        return {(await asyncdb.call(_backend))[0] for _ in range(5)}

    async def five_at_once() -> list[str]:
        calls = [asyncio.ensure_future(asyncdb.call(held)) for _ in range(5)]
        await asyncio.sleep(0.2)
        assert len(_threads()) == 2, "two threads busy, three steps waiting: no third thread"
        release.set()
        return await asyncio.gather(*calls)

    assert len(asyncio.run(one_at_a_time())) == 1, "one step at a time: one thread does them all"
    assert set(asyncio.run(five_at_once())) == {"mail-db_0", "mail-db_1"}


def test_a_step_whose_caller_went_away_before_it_started_is_not_run(two_threads) -> None:
    release = threading.Event()
    ran: list[str] = []

    def held() -> None:
        release.wait(10)

    def recorded(name: str) -> None:
        ran.append(name)

    async def scenario() -> None:
        busy = [asyncio.ensure_future(asyncdb.call(held)) for _ in range(2)]
        gone = asyncio.ensure_future(asyncdb.call(recorded, "gone"))
        stays = asyncio.ensure_future(asyncdb.call(recorded, "stays"))
        await asyncio.sleep(0.1)
        gone.cancel()
        release.set()
        await asyncio.gather(*busy, stays)
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(scenario())
    assert ran == ["stays"]


def test_shutdown_closes_every_threads_connection_and_a_later_call_starts_afresh(two_threads) -> None:
    release = threading.Event()

    def held() -> int:
        release.wait(10)
        return _backend()[1]

    async def both_threads() -> list[int]:
        calls = [asyncio.ensure_future(asyncdb.call(held)) for _ in range(2)]
        await asyncio.sleep(0.1)
        release.set()
        return await asyncio.gather(*calls)

    pids = asyncio.run(both_threads())
    assert len(set(pids)) == 2
    asyncdb.shutdown()
    assert not _threads()
    # A closed connection's backend ends on the server a moment after the client has gone.
    deadline = time.monotonic() + 5
    while _still_running(pids):
        assert time.monotonic() < deadline, "both backends ended"
        time.sleep(0.02)
    assert asyncio.run(asyncdb.call(_backend))[1] not in pids
