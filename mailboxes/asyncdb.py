"""How async listeners reach the store: `await asyncdb.call(services.deliver, raw, sender, rcpts)`.

Each call runs one synchronous, transactional function in a small pool of database threads; every thread keeps
its own Django connection between calls (connecting per protocol step would start a PostgreSQL backend each
time). A connection older than MAILSITE_DB_CONN_MAX_AGE is replaced before a call, and after a database error
it is dropped, so a listener recovers by itself once the database is back (the session that hit the error gets
an exception to map to a temporary-failure reply).

`asgiref.sync_to_async`'s default (thread_sensitive) would run every call of the process in one thread; a
listener serving many sessions needs several.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections

P = ParamSpec("P")
T = TypeVar("T")

_Step = tuple["asyncio.Future[Any]", Callable[[], Any]]


class _Threads:
    """The database threads: each takes the next step from one queue, runs it and hands its outcome to the event
    loop that asked for it (`call_soon_threadsafe`). `loop.run_in_executor` on a ThreadPoolExecutor chains a
    concurrent future to an asyncio one, with a lock and callbacks on each side: a `call` of a function that does
    nothing took 97-124 us that way against 77-91 us this way (medians, the 2-core test machine), and every
    protocol step of every listener is one. Threads start as they are needed, up to `size`, as the executor's
    did."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._steps: queue.SimpleQueue[_Step | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads done with their step and not yet claimed by a new one

    def submit(self, step: _Step) -> None:
        self._steps.put(step)
        with self._lock:
            if self._idle:  # a thread waiting for a step takes this one; the next step needs another
                self._idle -= 1
            elif len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"mail-db_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            item = self._steps.get()
            if item is None:  # `stop`: this thread's connections end with it
                connections.close_all()
                return
            future, step = item
            outcome: tuple[Any, BaseException | None] | None = None
            if not future.cancelled():  # else the session went away before its step started
                try:
                    outcome = (step(), None)
                except BaseException as error:  # handed to the caller, as an executor would
                    outcome = (None, error)
            with self._lock:
                # Idle before the answer: the session's next step may follow at once, and finds this thread.
                self._idle += 1
            if outcome is not None:
                settle_from_thread(future, *outcome)

    def stop(self) -> None:
        """Each thread closes the connections it opened, and ends; the steps queued before run first."""
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._steps.put(None)
        for thread in threads:
            thread.join()


def settle_from_thread(future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """From another thread: `future`'s result, or `error`, set in its event loop's next step unless the future was
    cancelled meanwhile; nothing when that loop is closed (nobody waits any more)."""
    with contextlib.suppress(RuntimeError):
        future.get_loop().call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


_lock = threading.Lock()
_threads: _Threads | None = None
_thread = threading.local()  # when this database thread's connections were opened


def _pool() -> _Threads:
    global _threads
    with _lock:
        if _threads is None:
            _threads = _Threads(settings.MAILSITE_DB_THREADS)
        return _threads


def _run(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    opened = getattr(_thread, "opened", None)
    now = time.monotonic()
    if opened is None or now - opened > settings.MAILSITE_DB_CONN_MAX_AGE:
        connections.close_all()
        _thread.opened = now
    try:
        return func(*args, **kwargs)
    except DatabaseError:
        # The connection may be broken (server restarted, network cut): start afresh on the next call.
        connections.close_all()
        _thread.opened = None
        raise


async def call(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `func(*args, **kwargs)` in a database thread and return its result."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    step: Callable[[], T] = functools.partial(_run, func, *args, **kwargs)
    future: asyncio.Future[T] = loop.create_future()
    _pool().submit((future, functools.partial(context.run, step)))
    return await future


def shutdown() -> None:
    """Close every pooled connection and stop the threads (process exit, end of a test)."""
    global _threads
    with _lock:
        threads, _threads = _threads, None
    if threads is not None:
        threads.stop()
