"""The IMAP listeners: a thin asyncio shell around `imapd.session.Session`.

MAILSITE_IMAP_PORT speaks plaintext with STARTTLS; MAILSITE_IMAPS_PORT speaks TLS from the first byte
(RFC 8314). Each connection is its own task, so an error in one session never reaches another. Behind a
balancer (MAILSITE_PROXY_PROTOCOL_FROM) each connection starts with its PROXY header (`ops.proxied`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from imapd.commands import TABLE
from imapd.protocol import Command, State
from imapd.session import Handler, Session
from mailsite import tls
from mailsite.runtime import Listener
from ops import metrics, proxied

log = logging.getLogger(__name__)


def _counted(name: str, handler: Handler) -> Handler:
    """The handler, counting its command (mailsite_commands_total) and timing IDLE (mailsite_imap_idle_seconds)."""
    counter = metrics.COMMANDS.labels("imap", name)
    if name != "IDLE":

        async def counted(session: Session, command: Command) -> str | None:
            counter.inc()
            return await handler(session, command)

        return counted

    async def idling(session: Session, command: Command) -> str | None:
        counter.inc()
        started = time.monotonic()
        try:
            return await handler(session, command)
        finally:
            metrics.IMAP_IDLE_SECONDS.observe(time.monotonic() - started)

    return idling


COUNTED: dict[State, dict[str, Handler]] = {
    state: {name: _counted(name, handler) for name, handler in handlers.items()} for state, handlers in TABLE.items()
}


async def _start(name: str, port: int, implicit_tls: bool) -> Listener:
    sessions: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str | None) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions.add(task)
        metrics.CONNECTIONS.labels(name).inc()  # ops
        try:
            await Session(reader, writer, tls=implicit_tls, handlers=COUNTED, remote_ip=client_ip).run()
        except Exception:
            log.exception("%s session failed", name)
            writer.close()
        finally:
            sessions.discard(task)

    server = await proxied.stream_server(
        name,
        settings.MAILSITE_BIND,
        port,
        handle,
        tls=tls.server_context() if implicit_tls else None,
        tls_handshake_timeout=30,
        limit=256 * 1024,
    )
    bound = server.sockets[0].getsockname()[1]

    async def close() -> None:
        server.close()
        for task in list(sessions):
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        await server.wait_closed()

    return Listener(name, settings.MAILSITE_BIND, bound, close)


async def start_listeners() -> list[Listener]:
    return [
        await _start("imap", settings.MAILSITE_IMAP_PORT, implicit_tls=False),
        await _start("imaps", settings.MAILSITE_IMAPS_PORT, implicit_tls=True),
    ]
