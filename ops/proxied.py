"""Reading a PROXY protocol header off an asyncio stream, for the listeners (the parsing is `ops.proxy`)."""

from __future__ import annotations

import asyncio

from ops import proxy
from ops.proxy import ProxyError, ProxyHeader

HEADER_TIMEOUT = 10.0  # seconds a balancer has to send its header; it sends it at once


async def read_header(reader: asyncio.StreamReader) -> ProxyHeader:
    """The header at the start of the stream, and not one octet more; ProxyError if there is none."""
    try:
        async with asyncio.timeout(HEADER_TIMEOUT):
            return await _read(reader)
    except TimeoutError:
        raise ProxyError(f"no PROXY header within {HEADER_TIMEOUT:g} seconds") from None
    except asyncio.IncompleteReadError:
        raise ProxyError("the connection closed inside the PROXY header") from None
    except asyncio.LimitOverrunError:
        raise ProxyError("PROXY v1 header without CRLF") from None


async def _read(reader: asyncio.StreamReader) -> ProxyHeader:
    data = await reader.readexactly(proxy.MIN_HEADER)  # no header is shorter, so nothing after one is read
    while (header := proxy.parse(data)) is None:
        if data.startswith(proxy.V1_PREFIX):
            data += await reader.readuntil(b"\n")  # a bare LF or a line over 107 octets is refused by parse
        else:
            data += await reader.readexactly(proxy.missing(data))
    return header
