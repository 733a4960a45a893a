"""The SMTP listeners: MX (MAILSITE_SMTP_PORT), submission with STARTTLS (MAILSITE_SUBMISSION_PORT) and with
implicit TLS (MAILSITE_SMTPS_PORT). Sockets use SO_REUSEPORT so several processes can share each port."""

from __future__ import annotations

import asyncio
import socket

from django.conf import settings

from mailsite import tls
from mailsite.runtime import Listener
from ops import proxied
from ops.limits import LeasedConnectionCounter
from smtpd import connections as connection_counts
from smtpd import policy
from smtpd.batching import DeliveryGroups
from smtpd.handler import Handler
from smtpd.protocol import MailsiteSMTP, SessionLimits


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # Nagle's algorithm holds back the second of two pipelined replies for a delayed ACK (40 ms per RCPT).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


TLS_HANDSHAKE_TIMEOUT = 60.0  # asyncio's default for implicit TLS


def session_limits() -> SessionLimits:
    return SessionLimits(
        command_timeout=settings.MAILSITE_SMTP_COMMAND_TIMEOUT,
        line_deadline=settings.MAILSITE_SMTP_LINE_DEADLINE,
        data_block_timeout=settings.MAILSITE_SMTP_DATA_BLOCK_TIMEOUT,
        data_deadline=settings.MAILSITE_SMTP_DATA_DEADLINE,
        max_errors=settings.MAILSITE_SMTP_MAX_ERRORS,
    )


async def start_listeners() -> list[Listener]:
    loop = asyncio.get_running_loop()
    context = tls.server_context()
    limits = session_limits()
    # One count for all three ports (and, under a multi-process `manage.py smtpd`, for all its processes): the
    # limit is on a client's connections to us.
    connections = connection_counts.for_this_process(settings.MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP)
    # One group at a time per process: every message that finishes DATA meanwhile joins the next group, so
    # deliveries to the same Inbox do not queue on its row lock, and the other database threads stay free for
    # RCPT and AUTH lookups. More processes (MAILSITE_SMTP_PROCESSES) store groups in parallel; on the 2-core
    # test machine this measured 170-185 msg/s against 126-159 with four groups in flight.
    groups = DeliveryGroups(max_in_flight=1)
    host = settings.MAILSITE_BIND
    listeners = []
    still_open: set[str] = set()
    for role, port, implicit_tls in (
        (policy.MX, settings.MAILSITE_SMTP_PORT, False),
        (policy.SUBMISSION, settings.MAILSITE_SUBMISSION_PORT, False),
        (policy.SMTPS, settings.MAILSITE_SMTPS_PORT, True),
    ):
        handler = Handler(role, groups)

        def factory(
            client_address: str | None = None,
            role: policy.ListenerRole = role,
            handler: Handler = handler,
            implicit: bool = implicit_tls,
        ) -> MailsiteSMTP:
            return MailsiteSMTP(
                handler,
                role=role,
                limits=limits,
                connections=connections,
                implicit_tls=implicit,
                client_address=client_address,
                hostname=settings.MAILSITE_HOSTNAME,
                ident="ESMTP Mailsite",
                data_size_limit=settings.MAILSITE_MAX_MESSAGE_SIZE,
                enable_SMTPUTF8=True,
                decode_data=False,
                tls_context=None if implicit else context,
                # RFC 8314 3.3: submission over cleartext must start TLS before anything else.
                require_starttls=role.submission and not implicit,
                auth_required=role.submission,
                auth_require_tls=True,
                auth_exclude_mechanism=() if role.submission else ("PLAIN", "LOGIN"),
                loop=loop,
            )

        sock = _bind(host, port)
        server: asyncio.Server | proxied.BalancedServer
        if settings.MAILSITE_PROXY_PROTOCOL_FROM:  # behind a balancer: the PROXY header is read before TLS
            server = proxied.BalancedServer(
                role.name,
                sock,
                settings.MAILSITE_PROXY_PROTOCOL_FROM,
                factory,
                tls=context if implicit_tls else None,
                tls_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
            )
        else:
            server = await loop.create_server(factory, sock=sock, ssl=context if implicit_tls else None)

        async def close(server: asyncio.Server | proxied.BalancedServer = server, name: str = role.name) -> None:
            server.close()
            await server.wait_closed()
            still_open.discard(name)
            if not still_open and isinstance(connections, LeasedConnectionCounter):
                connections.close()  # its thread stops renewing the leases of the sessions it counted

        still_open.add(role.name)

        listeners.append(Listener(role.name, host, sock.getsockname()[1], close))
    return listeners
