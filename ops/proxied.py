"""Listening behind a TCP load balancer that speaks the PROXY protocol (the parsing is `ops.proxy`).

With MAILSITE_PROXY_PROTOCOL_FROM set, a listener accepts connections itself instead of leaving that to
`loop.create_server`: from a trusted balancer it reads the header straight off the socket, exactly its length,
before anything else reads the connection, so that what follows (a TLS ClientHello on the implicit-TLS ports,
or a client's first command) stays in the kernel's buffer for the protocol. Only then is the socket handed to
asyncio (with TLS where the port has it), and the protocol is made knowing the client's real address.
Connections from elsewhere are served as they are; a PROXY header they send is refused by the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence

from ops import metrics, proxy
from ops.proxy import ProxyError, ProxyHeader

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds a balancer has to send its header; it sends it at once


# A balancer sends its header in one segment as it connects: a look at the first octets (MSG_PEEK) usually
# finds all of it, and it is then taken off with one recv of exactly its length.
_PEEK = 536  # the minimum IPv4 segment: a v1 header, or a v2 header with a few TLVs


async def read_header(sock: socket.socket) -> ProxyHeader:
    """The header at the start of a connection, and not one octet more; ProxyError if there is none."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(HEADER_TIMEOUT):
            seen = await _peek(loop, sock)
            header = proxy.parse(seen)
            if header is not None:
                await _receive(loop, sock, header.length)
                return header
            # Only its start so far (or a v2 header longer than the look): take that, then read on exactly.
            data = await _receive(loop, sock, len(seen))
            while (header := proxy.parse(data)) is None:
                # v1 ends at a CRLF only a byte at a time can find without reading past it (at most 107).
                data += await _receive(loop, sock, 1 if data.startswith(proxy.V1_PREFIX) else proxy.missing(data))
            return header
    except TimeoutError:
        raise ProxyError(f"no PROXY header within {HEADER_TIMEOUT:g} seconds") from None


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    while True:
        try:
            seen = sock.recv(_PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            await _readable(loop, sock)
            continue
        if not seen:
            raise ProxyError("the connection closed before a PROXY header")
        return seen


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Until the socket has something to read (or was closed by its peer)."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def _receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ProxyError("the connection closed inside the PROXY header")
        data += chunk
    return data


class BalancedServer:
    """Accepts on a bound, listening socket; `protocol(client_ip)` makes each connection's protocol."""

    def __init__(
        self,
        name: str,
        sock: socket.socket,
        trusted: Sequence[proxy.Network],
        protocol: Callable[[str], asyncio.BaseProtocol],
        *,
        tls: ssl.SSLContext | None = None,
        tls_handshake_timeout: float | None = None,
    ) -> None:
        self.name = name
        self.sock = sock
        self.trusted = trusted
        self.protocol = protocol
        self.tls = tls
        self.tls_handshake_timeout = tls_handshake_timeout
        self._connecting: set[asyncio.Task[None]] = set()
        self._accepting = asyncio.create_task(self._accept())

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(self.sock)
                while True:
                    self._start(conn, str(peer[0]))
                    # Take the rest of the backlog now, without a round through the event loop for each.
                    conn, peer = self.sock.accept()
                    conn.setblocking(False)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:  # out of descriptors, or the client reset before we accepted: go on
                log.warning("%s: accept failed: %s", self.name, exc)
                await asyncio.sleep(0.1)

    def _start(self, conn: socket.socket, peer_ip: str) -> None:
        task = asyncio.create_task(self._connect(conn, peer_ip))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket, peer_ip: str) -> None:
        client_ip = peer_ip
        try:
            if proxy.trusted(peer_ip, self.trusted):
                header = await read_header(conn)
                if header.source is not None:  # None: the balancer's own check (LOCAL), the peer is the client
                    client_ip = header.source[0]
            loop = asyncio.get_running_loop()
            await loop.connect_accepted_socket(
                lambda: self.protocol(client_ip),
                conn,
                ssl=self.tls,
                ssl_handshake_timeout=self.tls_handshake_timeout if self.tls else None,
            )
        except ProxyError as exc:
            log.warning("%s refused peer=%s reason=%r", self.name, peer_ip, str(exc))
            metrics.CONNECTIONS_REFUSED.labels(self.name, "bad-proxy-header").inc()
            conn.close()
        except (OSError, TimeoutError) as exc:  # TLS handshakes that fail (ssl.SSLError is an OSError)
            log.info("%s connection failed client=%s: %s", self.name, client_ip, exc)
            conn.close()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self.sock,)

    def close(self) -> None:
        """Stop accepting (like `asyncio.Server.close`, open connections go on)."""
        self._accepting.cancel()
        for task in list(self._connecting):
            task.cancel()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._accepting
        await asyncio.gather(*self._connecting, return_exceptions=True)
        self.sock.close()


StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, str | None], Awaitable[None]]


async def stream_server(
    name: str,
    host: str,
    port: int,
    handle: StreamHandler,
    *,
    tls: ssl.SSLContext | None = None,
    tls_handshake_timeout: float | None = None,
    limit: int = 2**16,
    backlog: int = 1024,
) -> asyncio.Server | BalancedServer:
    """A streams listener (POP3, IMAP, ManageSieve): `handle(reader, writer, client_ip)` serves a connection.

    client_ip is the address a trusted balancer named in its PROXY header (MAILSITE_PROXY_PROTOCOL_FROM), or
    None for a direct connection, whose peer is the client.
    """
    from django.conf import settings

    timeout = tls_handshake_timeout if tls else None
    if not settings.MAILSITE_PROXY_PROTOCOL_FROM:
        return await asyncio.start_server(
            lambda reader, writer: handle(reader, writer, None),
            host,
            port,
            reuse_port=True,
            ssl=tls,
            ssl_handshake_timeout=timeout,
            limit=limit,
            backlog=backlog,
        )
    # Behind a balancer its PROXY header is read off the socket before anything else, TLS included.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog, reuse_port=True)
    sock.setblocking(False)

    def protocol(client_ip: str) -> asyncio.StreamReaderProtocol:
        return asyncio.StreamReaderProtocol(
            asyncio.StreamReader(limit=limit), lambda reader, writer: handle(reader, writer, client_ip)
        )

    return BalancedServer(
        name, sock, settings.MAILSITE_PROXY_PROTOCOL_FROM, protocol, tls=tls, tls_handshake_timeout=timeout
    )
