"""What the POP3 and ManageSieve listeners share around their sans-I/O cores: sending what the core has,
reading the next bytes under an idle timeout, STARTTLS without taking plain-text bytes as protected, and the
refusal of a PROXY header where none may come."""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, Protocol, TypeVar

from mailsite import tls
from ops import proxy

READ_SIZE = 64 * 1024
TLS_HANDSHAKE_TIMEOUT = 30.0


class Core(Protocol):
    def data_to_send(self) -> bytes: ...
    def timed_out(self) -> None: ...
    def tls_started(self) -> None: ...


C = TypeVar("C", bound=Core)


class Shell(Generic[C]):
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: C
    log: logging.Logger
    remote_ip: str | None
    _first_input = True

    def _send(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    async def _read(self, idle_timeout: float) -> bytes:
        """Send what the core has, then read the next bytes; b"" when the peer closed or stayed idle too long
        (the core's goodbye for a timeout is sent first)."""
        self._send()
        await self.writer.drain()
        try:
            # A timeout scope rather than wait_for, which wraps every read of every command in a task of its own.
            async with asyncio.timeout(idle_timeout):
                return await self.reader.read(READ_SIZE)
        except TimeoutError:
            self.conn.timed_out()
            self._send()
            await self.writer.drain()
            return b""

    async def _start_tls(self) -> None:
        self._send()
        await self.writer.drain()
        # Bytes that reached the stream buffer after the STARTTLS command came in plain text: taking them as if
        # they came through TLS would let a man in the middle inject commands (the STARTTLS injection flaw).
        if self.reader._buffer:  # type: ignore[attr-defined]  # asyncio keeps no public view of it
            raise ConnectionAbortedError("data pipelined after the TLS command")
        await self.writer.start_tls(tls.server_context(), ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        self.conn.tls_started()

    async def _refused_proxy_header(self, data: bytes, protocol: str, refusal: bytes) -> bool:
        """Whether `data` opens the session with a PROXY header, refused with `refusal` (the session then ends):
        a header only comes first, and only from a trusted balancer, whose header `ops.proxied` has already read
        before the session started."""
        if not self._first_input:
            return False
        self._first_input = False
        if not proxy.looks_like_header(data):
            return False
        self.log.warning("%s refused client=%s reason=untrusted-proxy-header", protocol, self.remote_ip)
        self.writer.write(refusal)
        await self.writer.drain()
        return True
