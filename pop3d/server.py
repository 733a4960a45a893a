"""The POP3 listeners: a thin asyncio shell around `pop3d.protocol.Pop3Connection`.

POP3 with STLS on MAILSITE_POP3_PORT and implicit TLS on MAILSITE_POP3S_PORT. The shell reads bytes, feeds
the protocol core and carries out its events with one database call each: `actions.authenticate` and the
maildrop listing at login, batches of bodies for RETR and TOP read ahead of the client (`pop3d.readahead`),
`actions.delete_messages` at QUIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time

from django.conf import settings
from django.db import DatabaseError

from credentials.revocation import ends_session
from mailboxes import actions, asyncdb, signin
from mailboxes.models import Account
from mailsite import tls
from mailsite.runtime import Listener
from mailsite.shell import TLS_HANDSHAKE_TIMEOUT, Shell
from ops import metrics, proxied
from pop3d import maildrop
from pop3d.locks import MaildropLocks
from pop3d.protocol import (
    NEED_DATA,
    Authenticate,
    Close,
    Maildrop,
    Pop3Connection,
    Retrieve,
    StartTLS,
    Update,
)
from pop3d.readahead import Bodies

log = logging.getLogger(__name__)

_count_command = metrics.command_counter("pop3")


class Session(Shell[Pop3Connection]):
    log = log

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        locks: MaildropLocks,
        *,
        implicit_tls: bool,
        remote_ip: str | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.locks = locks
        peer = writer.get_extra_info("peername")
        # The client's address: the peer's, or the one a trusted balancer named in its PROXY header.
        self.remote_ip: str | None = remote_ip or (peer[0] if peer else None)
        self.conn = Pop3Connection(
            tls=implicit_tls,
            stls_available=not implicit_tls,
            plaintext_allowed=tls.plaintext_login_allowed(self.remote_ip),
            hostname=settings.MAILSITE_HOSTNAME,
            on_command=_count_command,
        )
        self.account: Account | None = None
        self.inbox_id = 0
        self.maildrop = Maildrop(0, ())
        self.bodies = Bodies(0, ())
        self._exit = contextlib.AsyncExitStack()

    async def run(self) -> None:
        try:
            async with self._exit:
                await self._serve()
        finally:
            self.writer.close()
            try:
                if self.account is not None:
                    # A dropped connection ends here too: nothing was deleted (RFC 1939 6), the lock goes.
                    await self.locks.release(self.account.pk)
                # Waiting lets a TLS close_notify exchange finish and the socket under it be closed.
                await asyncio.wait_for(self.writer.wait_closed(), TLS_HANDSHAKE_TIMEOUT)
            except BaseException:
                # Cancelled (the listener is stopping) or a peer that never answers: cut the connection.
                self.writer.transport.abort()
                raise

    async def _serve(self) -> None:
        self._send()
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                data = await self._read(settings.MAILSITE_POP3_IDLE_TIMEOUT)
                if not data:
                    return
                if await self._refused_proxy_header(
                    data, "pop3", b"-ERR PROXY protocol header not accepted from this address\r\n"
                ):
                    return
                self.conn.receive_data(data)
            elif isinstance(event, Close):
                self._send()
                await self.writer.drain()
                return
            elif isinstance(event, Authenticate):
                await self._login(event)
            elif isinstance(event, Retrieve):
                await self._retrieve(event)
            elif isinstance(event, StartTLS):
                await self._start_tls()
            elif isinstance(event, Update):
                await self._update(event)
            self._send()

    async def _login(self, event: Authenticate) -> None:
        try:
            result = await signin.authenticate(
                event.username, event.password, remote_ip=self.remote_ip, protocol="pop3"
            )
        except DatabaseError:
            log.exception("pop3: authentication failed for lack of the database")
            self.conn.temporary_failure()
            return
        if result.account is None:
            # Unknown user, wrong password and throttled all answer alike, after the same delay.
            await asyncio.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
            self.conn.login_failed()
            return
        account = result.account
        try:
            locked = await self.locks.acquire(account.pk)
        except Exception:
            log.exception("pop3: could not take the maildrop lock")
            self.conn.temporary_failure()
            return
        if not locked:
            self.conn.maildrop_in_use()
            return
        try:
            # Listed only once locked: a session that just finished its UPDATE has committed its deletions.
            self.inbox_id, self.maildrop = await asyncdb.call(maildrop.open_maildrop, account.pk)
        except DatabaseError:
            log.exception("pop3: could not read the maildrop")
            await self.locks.release(account.pk)
            self.conn.temporary_failure()
            return
        self.account = account
        self.bodies = Bodies(self.inbox_id, self.maildrop.entries)
        self._exit.callback(self.bodies.close)
        self.conn.login_succeeded(self.maildrop)
        # Revoking the app password ends the session: like a dropped connection, nothing is deleted (RFC 1939 6).
        await self._exit.enter_async_context(ends_session(account.pk, result.app_password_id, self._revoked))

    def _revoked(self) -> None:
        self.writer.write(b"-ERR [AUTH] The app password of this session was revoked\r\n")
        self.writer.close()

    async def _retrieve(self, event: Retrieve) -> None:
        entry = event.entry
        if event.lines == 0:
            raw = await asyncdb.call(maildrop.read_head, self.inbox_id, entry.uid)
        else:
            raw = await self.bodies.body(event.number)
        if raw is None:
            self.conn.message_unavailable(event.number)
        else:
            self.conn.send_message(raw, event.lines)

    async def _update(self, event: Update) -> None:
        assert self.account is not None
        try:
            await asyncdb.call(actions.delete_messages, self.account, self.inbox_id, list(event.uids))
        except (DatabaseError, actions.ServiceError):
            log.exception("pop3: UPDATE failed; nothing was removed")
            self.conn.update_finished(removed=False)
        else:
            self.conn.update_finished(removed=True)


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    locks: MaildropLocks,
    *,
    name: str,
    implicit_tls: bool,
    client_ip: str | None,
) -> None:
    # --- ops: session log lines, metrics; behind a balancer, the client's address from its PROXY header ---
    if client_ip is None:
        peer = writer.get_extra_info("peername")
        client_ip = peer[0] if peer else None
    started = time.monotonic()
    metrics.CONNECTIONS.labels(name).inc()
    session = None
    try:
        log.info("pop3 session start listener=%s client=%s", name, client_ip)
        session = Session(reader, writer, locks, implicit_tls=implicit_tls, remote_ip=client_ip)
        await session.run()
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass  # the client went away or TLS failed: nothing to answer, nothing was changed
    except Exception:
        # One broken session must not take the listener down; its maildrop is untouched (no UPDATE ran).
        log.exception("pop3: session failed")
    finally:
        if session is not None:
            duration = time.monotonic() - started
            metrics.SESSION_SECONDS.labels(name).observe(duration)
            log.info(
                "pop3 session end listener=%s client=%s user=%s duration=%.3f",
                name,
                client_ip,
                session.account.address if session.account is not None else "",
                duration,
            )


async def start_listeners() -> list[Listener]:
    locks = MaildropLocks()
    sessions: set[asyncio.Task] = set()

    def handler(name: str, *, implicit_tls: bool) -> proxied.StreamHandler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str | None) -> None:
            task = asyncio.current_task()
            assert task is not None
            sessions.add(task)
            try:
                await _handle(reader, writer, locks, name=name, implicit_tls=implicit_tls, client_ip=client_ip)
            except asyncio.CancelledError:
                pass  # the listener is closing; the session's cleanup ran on the way out
            finally:
                sessions.discard(task)

        return handle

    async def serve(name: str, port: int, *, implicit_tls: bool) -> asyncio.Server | proxied.BalancedServer:
        return await proxied.stream_server(
            name,
            settings.MAILSITE_BIND,
            port,
            handler(name, implicit_tls=implicit_tls),
            tls=tls.server_context() if implicit_tls else None,
            tls_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
            backlog=100,
        )

    servers = {
        "pop3": await serve("pop3", settings.MAILSITE_POP3_PORT, implicit_tls=False),
        "pop3s": await serve("pop3s", settings.MAILSITE_POP3S_PORT, implicit_tls=True),
    }
    remaining = len(servers)

    def closer(server: asyncio.Server | proxied.BalancedServer):
        async def close() -> None:
            nonlocal remaining
            server.close()
            await server.wait_closed()
            remaining -= 1
            if remaining == 0:
                for task in list(sessions):
                    task.cancel()
                await asyncio.gather(*sessions, return_exceptions=True)
                # Aborted transports close their sockets in a callback of the next loop iteration.
                await asyncio.sleep(0)
                await locks.close()

        return close

    return [
        Listener(name, settings.MAILSITE_BIND, server.sockets[0].getsockname()[1], closer(server))
        for name, server in servers.items()
    ]
