"""Health and readiness checks.

Alive (`/healthz`) means the process answers; ready (`/readyz`, `manage.py health`) means it can do its work: the
database answers a query, the broker accepts a connection, and every listener this process started (plus those
named in MAILSITE_READY_LISTENERS) accepts a connection and greets. A listener is asked for its greeting rather
than merely connected to, since the kernel completes TCP handshakes into the backlog even when the process that
should answer is stuck.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connections

from ops import proxy
from ops.targets import IMPLICIT_TLS, Target

TIMEOUT = 5  # seconds one check may take

# What each kind of listener says first; web listeners say nothing until asked.
_GREETINGS = {"smtp": b"220", "pop3": b"+OK", "imap": b"* OK", "managesieve": b'"', "web": b"HTTP/1."}
_GOODBYES = {"smtp": b"QUIT\r\n", "pop3": b"QUIT\r\n", "imap": b"a LOGOUT\r\n", "managesieve": b"LOGOUT\r\n"}


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    reason: str = ""


_lock = threading.Lock()
_started: set[Target] = set()


def register(target: Target) -> Callable[[], None]:
    """Count a listener this process started among the ones readiness checks; returns its unregister."""
    with _lock:
        _started.add(target)

    def unregister() -> None:
        with _lock:
            _started.discard(target)

    return unregister


def started() -> list[Target]:
    with _lock:
        return sorted(_started, key=str)


def database() -> Result:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # every driver error means the same here: not ready
        return Result("database", False, _reason(exc))
    finally:
        connections["default"].close()  # checks run on short-lived threads: no connection may outlive one
    return Result("database", True)


def broker() -> Result:
    from mailsite.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT)
    except Exception as exc:  # kombu wraps transport errors in several types
        return Result("broker", False, _reason(exc))
    return Result("broker", True)


def listener(target: Target) -> Result:
    """Connect, as a client would, and read the first line of the greeting."""
    kind = target.kind
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(target.host, target.host)
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((host, target.port), timeout=TIMEOUT))
            # A listener that expects a PROXY header from us gets the LOCAL kind, made for health checks
            # (it then uses the connection's own addresses).
            if kind != "web" and proxy.trusted(sock.getsockname()[0], settings.MAILSITE_PROXY_PROTOCOL_FROM):
                sock.sendall(proxy.LOCAL_HEADER)
            if target.name in IMPLICIT_TLS:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # whether it serves, not which certificate
                sock = stack.enter_context(context.wrap_socket(sock))
            if kind == "web":
                sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            first = stack.enter_context(sock.makefile("rb")).readline(512)
            if first.startswith(_GREETINGS[kind]) and (kind != "web" or first.split(b" ")[1:2] == [b"200"]):
                sock.sendall(_GOODBYES.get(kind, b""))
                return Result(str(target), True)
            return Result(str(target), False, f"unexpected greeting {first[:80]!r}")
    except (OSError, ValueError) as exc:
        return Result(str(target), False, _reason(exc))


def readiness(extra: Iterable[Target] = ()) -> list[Result]:
    """Every check, run at once: database, broker, then each listener."""
    targets = sorted({*started(), *extra}, key=str)
    with ThreadPoolExecutor(max_workers=2 + len(targets), thread_name_prefix="readiness") as pool:
        futures = [pool.submit(database), pool.submit(broker)]
        futures += [pool.submit(listener, target) for target in targets]
        return [future.result() for future in futures]


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:300]
