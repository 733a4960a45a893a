"""Real parts for relay tests: aiosmtpd sinks on loopback addresses and Celery worker processes.

Sinks of one test process share one port (the relay connects to MAILSITE_RELAY_PORT on every MX) and live on
their own loopback network 127.0.<20 + xdist worker number>.0/24, so parallel test processes never meet.
"""

from __future__ import annotations

import asyncio
import collections
import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from django.conf import settings
from django.db import connection

from tests.dns_server import DnsServer

WORKER_NUMBER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
NETWORK = f"127.0.{20 + WORKER_NUMBER}"
RELAY_QUEUE = f"relay-test-gw{WORKER_NUMBER}"


def address(host: int) -> str:
    """The loopback address number `host` of this test process's network, e.g. 127.0.20.2."""
    return f"{NETWORK}.{host}"


# The MX hosts of the relay tests' remote domains: the sinks listen on these addresses.
MX1, MX2 = address(2), address(3)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05) -> object:
    """Poll until `predicate()` is truthy and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    helo: str


class SinkHandler:
    """Accepts everything unless told otherwise: per-recipient RCPT replies, queued DATA replies, stalling,
    breaking sessions. Counts sessions, and the most open at once."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_replies: collections.deque[str] = collections.deque()
        self.stall_seconds = 0.0  # how long each RCPT waits before its reply
        self.rcpt_started = 0
        # After a session's Nth stored message: the next DATA is read and the connection cut with no reply.
        self.drop_after: int | None = None
        # After a session's Nth stored message: the next RSET cuts the connection (an idle session timed out).
        self.hangup_after: int | None = None
        self.sessions = 0
        self.open_sessions = 0
        self.most_open = 0
        self.dropped = 0
        self.per_session: dict[int, int] = {}  # messages stored, by session number
        self.open: set[SMTP] = set()
        # Extensions offered beyond aiosmtpd's own, such as DSN or REQUIRETLS: their MAIL and RCPT parameters
        # are taken, not refused, and kept for each message in `parameters`. PIPELINING and CHUNKING too (BDAT
        # is _CountingSMTP's).
        self.extensions: tuple[str, ...] = ()
        self.parameters: list[list[str]] = []
        self.mail_reply = ""  # a refusal for every MAIL, when set
        self.drop_at_rcpt: int | None = None  # the Nth RCPT of all cuts the connection with no reply
        # What had already arrived behind each MAIL command when it was read: the rest of a pipelined group.
        self.ahead_of_mail: list[bytes] = []
        self.chunks = 0  # BDAT commands taken
        self.logins: list[tuple[str, str, str]] = []  # (mechanism, user, password) of every AUTH tried

    async def handle_EHLO(self, server, session, envelope, hostname, responses) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], *(f"250-{name}" for name in self.extensions), responses[-1]]

    def opened(self, server: SMTP) -> None:
        self.open.add(server)
        self.sessions += 1
        server.sink_number = self.sessions  # type: ignore[attr-defined]
        self.per_session[self.sessions] = 0
        self.open_sessions += 1
        self.most_open = max(self.most_open, self.open_sessions)

    def closed(self, server: SMTP) -> None:
        self.open.discard(server)
        self.open_sessions -= 1

    def _stored_in(self, server: SMTP) -> int:
        return self.per_session[server.sink_number]  # type: ignore[attr-defined]

    async def handle_RSET(self, server, session, envelope) -> str:
        if self.hangup_after is not None and self._stored_in(server) >= self.hangup_after:
            self.dropped += 1
            server.transport.abort()
        return "250 OK"

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        self.ahead_of_mail.append(bytes(server._reader._buffer))
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from, envelope.mail_options = address, list(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        self.rcpt_started += 1
        if self.rcpt_started == self.drop_at_rcpt:
            self.dropped += 1
            server.transport.abort()
        if self.stall_seconds:
            await asyncio.sleep(self.stall_seconds)
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.drop_after is not None and self._stored_in(server) >= self.drop_after:
            self.dropped += 1
            server.transport.abort()
            return "451 4.3.0 never sent: the connection is gone"
        if self.data_replies:
            reply = self.data_replies.popleft()
            if not reply.startswith("2"):
                return reply
        self.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content),
                session.ssl is not None,
                session.host_name or "",
            )
        )
        self.per_session[server.sink_number] += 1
        return "250 2.0.0 OK queued"


class _CountingSMTP(SMTP):
    """aiosmtpd's server telling its handler when a connection opens and closes (STARTTLS is not a new one), and
    taking BDAT (RFC 3030) for the relay tests' CHUNKING sinks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._chunks: list[bytes] = []

    async def smtp_BDAT(self, arg: str) -> None:
        words = arg.split()
        if not 1 <= len(words) <= 2 or not words[0].isdigit() or words[1:] not in ([], ["LAST"]):
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]")
            return
        data = await self._reader.readexactly(int(words[0]))  # read even when refused (RFC 3030 2)
        self.event_handler.chunks += 1
        if not self.envelope.rcpt_tos:
            self._chunks = []
            await self.push("503 5.5.1 need RCPT")
            return
        self._chunks.append(data)
        if not words[1:]:
            await self.push(f"250 2.0.0 {len(data)} octets received")
            return
        self.envelope.content = self.envelope.original_content = b"".join(self._chunks)
        self._chunks = []
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def smtp_MAIL(self, arg: str | None) -> None:
        await super().smtp_MAIL(self._take_parameters(arg, new=True))

    async def smtp_RCPT(self, arg: str | None) -> None:
        await super().smtp_RCPT(self._take_parameters(arg, new=False))

    def _take_parameters(self, arg: str | None, *, new: bool) -> str | None:
        """The command without the parameters of the extensions the sink offers, which are recorded."""
        handler = self.event_handler
        if not handler.extensions or arg is None:
            return arg
        if new:
            handler.parameters.append([])
        path, *words = arg.split(" ")
        ours = ("RET", "ENVID", "REQUIRETLS", "NOTIFY", "ORCPT")
        handler.parameters[-1].extend(word for word in words if word.partition("=")[0].upper() in ours)
        return " ".join([path, *(word for word in words if word.partition("=")[0].upper() not in ours)])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.event_handler.opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.event_handler.closed(self)


class _SinkController(Controller):
    def factory(self) -> SMTP:
        server = _CountingSMTP(self.handler, **self.SMTP_kwargs)
        if self.ssl_context is not None:
            # TLS from the first byte: aiosmtpd only counts STARTTLS as TLS for AUTH (as smtpd.protocol does).
            server._auth_require_tls = False
        return server


def _sink_tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.MAILSITE_TLS_CERT, settings.MAILSITE_TLS_KEY)
    return context


async def _close_sessions(handler: SinkHandler) -> None:
    for server in list(handler.open):
        if server.transport is not None:
            server.transport.close()
    for _ in range(100):  # connection_lost runs a loop step or two after close
        if not handler.open:
            return
        await asyncio.sleep(0.01)


class Sinks:
    """SMTP sinks on addresses of this process's loopback network, all on one port."""

    def __init__(self) -> None:
        self.port = free_port(address(2))
        self.handlers: dict[str, SinkHandler] = {}
        self._controllers: dict[str, Controller] = {}

    def start(
        self,
        host: str,
        *,
        starttls: bool = True,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        login: tuple[str, str] | None = None,
        mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
    ) -> SinkHandler:
        """A sink on `host`; STARTTLS with the site's self-signed pair unless given a `tls_context`, or TLS from
        the start with `implicit_tls`. With `login` it takes mail only after AUTH (with one of `mechanisms`) as
        that user."""
        handler = SinkHandler()
        context = tls_context or _sink_tls_context()
        options: dict[str, object] = {}
        if login is not None:

            def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
                user, password = auth_data.login.decode(), auth_data.password.decode()
                handler.logins.append((mechanism, user, password))
                return AuthResult(success=(user, password) == login, handled=False)

            options = {
                "authenticator": authenticator,
                "auth_required": True,
                "auth_require_tls": True,
                "auth_exclude_mechanism": [name for name in ("PLAIN", "LOGIN") if name not in mechanisms],
            }
        controller = _SinkController(
            handler,
            hostname=host,
            port=self.port,
            server_hostname="sink.example.net",
            tls_context=context if starttls and not implicit_tls else None,
            ssl_context=context if implicit_tls else None,
            require_starttls=False,
            **options,
        )
        controller.start()
        # start() checks the listener with a connection of its own: not one of the relay's sessions.
        wait_for(lambda: handler.open_sessions == 0)
        handler.sessions = handler.most_open = 0
        handler.per_session.clear()
        self.handlers[host] = handler
        self._controllers[host] = controller
        return handler

    def stop(self, host: str) -> None:
        controller, handler = self._controllers.pop(host), self.handlers.pop(host)
        # A session the relay still holds (a connection kept for its next message) ends with its sink, rather
        # than being left for the garbage collector to find unclosed.
        asyncio.run_coroutine_threadsafe(_close_sessions(handler), controller.loop).result(timeout=10)
        controller.stop()

    def stop_all(self) -> None:
        for host in list(self._controllers):
            self.stop(host)

    def quiet(self) -> None:
        """Wait for the relay's sessions to end (QUIT) before the sinks stop, so no connection is left open."""
        wait_for(lambda: all(handler.open_sessions == 0 for handler in self.handlers.values()))

    def received(self) -> list[Received]:
        return [message for handler in self.handlers.values() for message in handler.messages]


def worker_env(dns_server: DnsServer, sinks: Sinks) -> dict[str, str]:
    """A relay worker's settings: the loopback DNS server, the sinks' port, short timeouts, retries and dead
    times."""
    return {
        "MAILSITE_DNS_NAMESERVERS": dns_server.address,
        "MAILSITE_DNS_TIMEOUT": "1",
        "MAILSITE_RELAY_PORT": str(sinks.port),
        "MAILSITE_RELAY_TIMEOUT": "2",
        "MAILSITE_RELAY_RETRY_SCHEDULE": "1s",
        "MAILSITE_RELAY_CLAIM_TIMEOUT": "3s",
        "MAILSITE_RELAY_SWEEP_INTERVAL": "1s",
        "MAILSITE_RELAY_SWEEP_GRACE": "1s",
        # Destinations the tests leave unreachable on purpose are dead for a second only, and in keys of their
        # own worker, so that no later test finds them dead.
        "MAILSITE_RELAY_DEAD_TIME": "1s",
        "MAILSITE_LIMITS_PREFIX": f"mailsite:test-relay:{uuid.uuid4().hex}:",
    }


class PolicyServer:
    """An HTTPS server on loopback serving an MTA-STS policy at /.well-known/mta-sts.txt (RFC 8461 3.3)."""

    def __init__(self, host: str, tls_context: ssl.SSLContext) -> None:
        self.body = b""
        self.status = 200
        self.content_type = "text/plain"
        self.requests: list[tuple[str, str]] = []  # (Host header, path)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.headers.get("Host", ""), self.path))
                self.send_response(server.status)
                self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(server.body)))
                if 300 <= server.status < 400:
                    self.send_header("Location", "https://elsewhere.example/.well-known/mta-sts.txt")
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="test-mta-sts", daemon=True)
        self._thread.start()

    def serve(self, mode: str, *mx: str, max_age: int = 86400) -> None:
        lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {pattern}" for pattern in mx), f"max_age: {max_age}"]
        self.body = ("\r\n".join(lines) + "\r\n").encode()
        self.status, self.content_type = 200, "text/plain"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def worker_database_url() -> str:
    """The URL of the database pytest-django created for this test process (test_ms_relay_gw0 etc.)."""
    if connection.vendor != "postgresql":
        # The worker is another process on the same database, which the SQLite test database is not.
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class CeleryWorker:
    """A real `celery worker --beat` process on the test database, the test broker and this process's queue."""

    def __init__(self, workdir: Path, extra_env: dict[str, str], concurrency: int = 2) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": worker_database_url(),
            "MAILSITE_BROKER_URL": settings.CELERY_BROKER_URL,
            "MAILSITE_RELAY_QUEUE": RELAY_QUEUE,
            "MAILSITE_DATA_DIR": str(workdir),
            **extra_env,
        }
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "worker.log"

    def revive(self) -> None:
        """Forget the failures this worker counted against destinations (relay.dead), so that a test starts with
        every destination alive, whatever the tests before it left unreachable less than a dead time ago."""
        prefix = self.env["MAILSITE_LIMITS_PREFIX"]
        client = redis.Redis.from_url(self.env["MAILSITE_BROKER_URL"])
        for key in client.scan_iter(match=f"{prefix}relay-*"):
            client.delete(key)
        client.close()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        offset = self.log_path.stat().st_size
        command = [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "mailsite.celery",
            "worker",
            "--beat",
            "--schedule",
            str(self.workdir / f"beat-{uuid.uuid4().hex}"),
            "--queues",
            RELAY_QUEUE,
            "--hostname",
            f"relay-{uuid.uuid4().hex[:8]}@%h",
            "--concurrency",
            str(self.concurrency),
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        cwd = Path(__file__).resolve().parent.parent
        # Its own session, so the test can kill the worker with all its pool processes at once.
        self.process = subprocess.Popen(
            command, cwd=cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"celery worker exited:\n{self.log()}")
            return b" ready." in self.log_path.read_bytes()[offset:]

        wait_for(ready, timeout=30, interval=0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the worker and its pool: nothing gets to clean up, as in a crash or an OOM kill."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
