"""Running the listeners: the contract every protocol package follows, and the foreground runner.

A protocol package has a `server` module with `async def start_listeners() -> list[Listener]`: it binds its
sockets (SO_REUSEPORT, so several processes can share a port) and returns at once, leaving the servers running
in the current event loop. `runmail` runs every package's listeners and the web server in one process and a
Celery worker in another, restarting either if it dies (`supervise`, `mailsite/supervise.py`); the
per-protocol commands (`smtpd`, `pop3d`, `imapd`) start one package each.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from django.conf import settings

from mailsite import tls
from mailsite.supervise import Supervised
from ops import checks
from ops.targets import Target

log = logging.getLogger("mailsite")

PROTOCOL_MODULES = {
    "smtpd": "smtpd.server",
    "pop3d": "pop3d.server",
    "imapd": "imapd.server",
    "managesieve": "sieve.managesieve.server",
}


@dataclass
class Listener:
    name: str  # e.g. "smtp", "submission", "imaps"
    host: str
    port: int
    close: Callable[[], Awaitable[None]]

    def __str__(self) -> str:
        return f"{self.name} listening on {self.host}:{self.port}"


async def start_protocols(names: Sequence[str]) -> list[Listener]:
    """Start the listeners of these protocol packages; packages without a server yet are skipped."""
    listeners: list[Listener] = []
    for name in names:
        try:
            module = importlib.import_module(PROTOCOL_MODULES[name])
        except ModuleNotFoundError as exc:
            if exc.name != PROTOCOL_MODULES[name]:
                raise
            module = None
        start = getattr(module, "start_listeners", None)
        if start is None:
            log.info("%s: not built yet, not started", name)
            continue
        for listener in await start():
            log.info("%s", listener)
            listeners.append(readiness_checked(listener))
    if listeners:
        tls.watch_in_background()  # renewed certificates reach running listeners (mailsite/tls.py)
    return listeners


def readiness_checked(listener: Listener) -> Listener:
    """Count the listener among those /readyz and `manage.py health` connect to, until it is closed."""
    unregister = checks.register(Target(listener.name, listener.host, listener.port))
    close = listener.close

    async def closing() -> None:
        unregister()
        await close()

    listener.close = closing
    return listener


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def settle_collector() -> None:
    """Leave what the started process holds for good (its modules, classes, settings, Django's registry: some
    100,000 objects) out of the garbage collector's full passes. Each such pass walked all of them while every
    session of the process waited: 60 ms every few seconds under the 10-client IMAP mix, the p99 of every
    command. What is garbage already goes first; what sessions create afterwards is collected as before."""
    gc.collect()
    gc.freeze()


async def serve(names: Sequence[str], *, web: bool = False) -> None:
    """Run listeners (and optionally the web server) until SIGINT or SIGTERM."""
    listeners = await start_protocols(names)
    if web:
        from mailsite import web as web_listeners

        for listener in await web_listeners.start_listeners():
            log.info("%s", listener)
            listeners.append(readiness_checked(listener))
    settle_collector()
    try:
        await _until_signalled()
    finally:
        log.info("shutting down")
        for listener in listeners:
            await listener.close()
        log.info("stopped")


async def supervise(processes: Sequence[Supervised]) -> None:
    """Keep these processes running until SIGINT or SIGTERM, then stop them all."""
    for process in processes:
        process.start()
    try:
        await _until_signalled()
    finally:
        log.info("shutting down")
        await asyncio.gather(*(process.stop() for process in processes))
        log.info("stopped")


def worker() -> Supervised:
    """A Celery worker with beat, as `runmail` runs it."""
    log.info("worker: celery with beat, broker %s", settings.CELERY_BROKER_URL.split("://")[0])
    return Supervised(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "mailsite.celery",
            "--quiet",
            "worker",
            "--beat",
            "--schedule",
            settings.CELERY_BEAT_SCHEDULE_FILENAME,
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
        ],
    )
