"""The ManageSieve listener: a thin asyncio shell around `sieve.managesieve.protocol.ManageSieveConnection`.

One port (MAILSITE_MANAGESIEVE_PORT, 4190 as RFC 5804 1.8 registers) with STARTTLS. The shell reads bytes,
feeds the core and carries out its events: the password check through `mailboxes.signin` (the store's
`authenticate`, shared throttling), each script operation as one `asyncdb.call` into `sieve.scripts`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from django.conf import settings
from django.db import DatabaseError

from mailboxes import asyncdb, signin
from mailboxes.models import Account
from mailsite import tls
from mailsite.runtime import Listener
from mailsite.shell import TLS_HANDSHAKE_TIMEOUT, Shell
from ops import metrics, proxied
from sieve import scripts
from sieve.managesieve.protocol import NEED_DATA, Authenticate, Close, ManageSieveConnection, Operation, StartTLS

log = logging.getLogger(__name__)

_count_command = metrics.command_counter("sieve")

IDLE_TIMEOUT = 600.0


def _operation(account: Account, name: str, args: tuple[str | int, ...]) -> tuple[str, object]:
    """One script operation against the store: ("ok", None), ("list", [...]), ("script", text)."""
    match name:
        case "LISTSCRIPTS":
            return "list", scripts.list_scripts(account)
        case "GETSCRIPT":
            return "script", scripts.get_script(account, str(args[0]))
        case "PUTSCRIPT":
            scripts.put_script(account, str(args[0]), str(args[1]))
        case "SETACTIVE":
            scripts.set_active(account, str(args[0]))
        case "DELETESCRIPT":
            scripts.delete_script(account, str(args[0]))
        case "RENAMESCRIPT":
            scripts.rename_script(account, str(args[0]), str(args[1]))
        case "HAVESPACE":
            scripts.check_name(str(args[0]))
            scripts.have_space(account, str(args[0]), int(args[1]))
    return "ok", None


class Session(Shell[ManageSieveConnection]):
    log = log

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote_ip: str | None = None
    ) -> None:
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        # The client's address: the peer's, or the one a trusted balancer named in its PROXY header.
        self.remote_ip: str | None = remote_ip or (peer[0] if peer else None)
        self.conn = ManageSieveConnection(
            tls=False,
            plaintext_allowed=tls.plaintext_login_allowed(self.remote_ip),
            hostname=settings.MAILSITE_HOSTNAME,
            on_command=_count_command,
        )
        self.account: Account | None = None

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            await self._close()

    async def _close(self) -> None:
        self.writer.close()
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # The listener is stopping: no waiting for the peer's TLS close_notify.
            self.writer.transport.abort()
            return
        try:
            # Waiting lets a TLS close_notify exchange finish and the socket under it be closed.
            await asyncio.wait_for(self.writer.wait_closed(), TLS_HANDSHAKE_TIMEOUT)
        except BaseException:
            self.writer.transport.abort()
            raise

    async def _serve(self) -> None:
        self._send()
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                data = await self._read(IDLE_TIMEOUT)
                if not data:
                    return
                # RFC 5804 1.3: BYE, and the server closes the connection.
                if await self._refused_proxy_header(
                    data, "managesieve", b'BYE "PROXY protocol header not accepted from this address"\r\n'
                ):
                    return
                self.conn.receive_data(data)
            elif isinstance(event, Close):
                self._send()
                await self.writer.drain()
                return
            elif isinstance(event, Authenticate):
                await self._login(event)
            elif isinstance(event, StartTLS):
                await self._start_tls()
            elif isinstance(event, Operation):
                await self._operate(event)
            self._send()

    async def _login(self, event: Authenticate) -> None:
        try:
            result = await signin.authenticate(
                event.username, event.password, remote_ip=self.remote_ip, protocol="sieve"
            )
        except DatabaseError:
            log.exception("managesieve: authentication failed for lack of the database")
            self.conn.temporary_failure()
            return
        if result.account is None:
            await asyncio.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
            self.conn.login_failed()
            return
        self.account = result.account
        self.conn.login_succeeded()

    async def _operate(self, event: Operation) -> None:
        # The core only hands out operations while authenticated (after UNAUTHENTICATE, a new AUTHENTICATE
        # replaces the account).
        assert self.account is not None
        try:
            kind, value = await asyncdb.call(_operation, self.account, event.name, event.args)
        except scripts.ScriptError as exc:
            self.conn.respond(False, str(exc), exc.code)
            return
        except DatabaseError:
            log.exception("managesieve: %s failed for lack of the database", event.name)
            self.conn.temporary_failure()
            return
        if kind == "list":
            self.conn.send_scripts(value)  # type: ignore[arg-type]
        elif kind == "script":
            self.conn.send_script(str(value))
        else:
            self.conn.respond(True)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str | None) -> None:
    try:
        await Session(reader, writer, client_ip).run()
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass  # the client went away or TLS failed; every operation already committed or did nothing
    except Exception:
        log.exception("managesieve: session failed")


async def start_listeners() -> list[Listener]:
    sessions: set[asyncio.Task] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str | None) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions.add(task)
        try:
            await _handle(reader, writer, client_ip)
        except asyncio.CancelledError:
            pass  # the listener is closing
        finally:
            sessions.discard(task)

    server = await proxied.stream_server(
        "managesieve", settings.MAILSITE_BIND, settings.MAILSITE_MANAGESIEVE_PORT, handle, backlog=100
    )

    async def close() -> None:
        server.close()
        await server.wait_closed()
        for task in list(sessions):
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        await asyncio.sleep(0)

    return [Listener("managesieve", settings.MAILSITE_BIND, server.sockets[0].getsockname()[1], close)]
