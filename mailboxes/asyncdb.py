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
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_thread = threading.local()  # when this database thread's connections were opened


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings.MAILSITE_DB_THREADS, thread_name_prefix="mail-db")
        return _executor


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
    return await loop.run_in_executor(_pool(), context.run, step)


def shutdown() -> None:
    """Close every pooled connection and stop the threads (process exit, end of a test)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    # One close task per thread: the barrier holds each task until all are running, so each lands in its own
    # thread and closes the connection that thread owns.
    threads = executor._max_workers
    barrier = threading.Barrier(threads)

    def close_here() -> None:
        barrier.wait(timeout=10)
        connections.close_all()

    for future in [executor.submit(close_here) for _ in range(threads)]:
        future.result()
    executor.shutdown(wait=True)
