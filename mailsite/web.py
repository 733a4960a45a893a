"""The web listeners (webmail, admin, ACME challenges) under uvicorn, in the runner's event loop.

Plain HTTP on MAILSITE_HTTP_PORT, and HTTPS on MAILSITE_HTTPS_PORT when set, with the SSLContext every mail
listener shares (`mailsite.tls`), so a renewed certificate reaches the web without a restart too. Behind
MAILSITE_TRUSTED_PROXIES uvicorn takes the client address and scheme from their forwarded headers; from
anyone else it ignores them (its default would believe any client on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from django.conf import settings

from mailsite import tls
from mailsite.runtime import Listener


async def _start(name: str, port: int, context: ssl.SSLContext | None) -> Listener:
    import uvicorn

    proxies = [str(network) for network in settings.MAILSITE_TRUSTED_PROXIES]
    config = uvicorn.Config(
        "mailsite.asgi:application",
        host=settings.MAILSITE_BIND,
        port=port,
        log_level="warning",
        log_config=None,  # its lines go through the site's logging (JSON, runmail's labels), not a config of its own
        lifespan="off",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    config.load()
    config.ssl = context  # the shared context itself, not a copy made from the files once
    server = uvicorn.Server(config)
    # The runner owns the signals; uvicorn must not install its own handlers.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it (a port in use)
            raise RuntimeError(f"{name}: the web server stopped at start")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]

    async def close() -> None:
        server.should_exit = True
        await task

    return Listener(name, settings.MAILSITE_BIND, bound, close)


async def start_listeners() -> list[Listener]:
    listeners = [await _start("web", settings.MAILSITE_HTTP_PORT, None)]
    if settings.MAILSITE_HTTPS_PORT is not None:
        listeners.append(await _start("https", settings.MAILSITE_HTTPS_PORT, tls.server_context()))
        tls.watch_in_background()
    return listeners
