"""Connections per second to the SMTP listener, straight and through the PROXY protocol path.

    .venv/bin/python bench/proxy_accept.py --connections 2000 --clients 8

Starts the SMTP listeners in this process twice (on free loopback ports, the embedded database is enough:
nothing is stored), first as usual, then with MAILSITE_PROXY_PROTOCOL_FROM=127.0.0.1 so that every connection
goes through `ops.proxied.BalancedServer` and starts with a PROXY v2 header naming another client. Each client
connects, reads the greeting, says QUIT and reads 221, as a balancer's short sessions do; the figure is
completed sessions per second over all clients.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")
os.environ.setdefault("MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP", "100000")


async def session(port: int, header: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header)
    assert (await reader.readline()).startswith(b"220")
    writer.write(b"QUIT\r\n")
    assert (await reader.readline()).startswith(b"221")
    writer.close()
    await writer.wait_closed()


async def run(connections: int, clients: int, *, proxied: bool) -> float:
    from django.conf import settings

    from ops import proxy
    from smtpd import server

    settings.MAILSITE_PROXY_PROTOCOL_FROM = (ipaddress.ip_network("127.0.0.1/32"),) if proxied else ()
    for name in ("MAILSITE_SMTP_PORT", "MAILSITE_SUBMISSION_PORT", "MAILSITE_SMTPS_PORT"):
        setattr(settings, name, 0)  # free ports
    listeners = await server.start_listeners()
    port = listeners[0].port
    header = proxy.v2_header(("203.0.113.9", 40000), ("127.0.0.1", 25)) if proxied else b""

    async def client(count: int) -> None:
        for _ in range(count):
            await session(port, header)

    started = time.perf_counter()
    await asyncio.gather(*(client(connections // clients) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    for listener in listeners:
        await listener.close()
    return (connections // clients) * clients / elapsed


def main() -> None:
    import django

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    django.setup()
    import logging

    logging.getLogger("smtpd").setLevel(logging.WARNING)  # one line per session would be most of the work
    for round_number in range(1, args.rounds + 1):
        straight = asyncio.run(run(args.connections, args.clients, proxied=False))
        proxied = asyncio.run(run(args.connections, args.clients, proxied=True))
        print(f"round {round_number}: straight {straight:.0f}/s, through PROXY v2 {proxied:.0f}/s")


if __name__ == "__main__":
    main()
