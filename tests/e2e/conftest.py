"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.smtp_support import RawSession
from tests.webmail_support import WebServer


@pytest.fixture
def raw_smtp() -> Iterator[Callable[..., RawSession]]:
    """Open line-level SMTP sessions (raw_smtp(port, context=...)); all are closed after the test."""
    opened: list[RawSession] = []

    def open_session(port: int, **options) -> RawSession:
        opened.append(RawSession(port, **options))
        return opened[-1]

    yield open_session
    for session in opened:
        session.close()


@pytest.fixture(scope="module")
def web_server(end_stray_connections) -> Iterator[WebServer]:
    """The webmail under uvicorn (ASGI) in a thread, for the browser tests of one module."""
    web = WebServer()
    yield web
    web.stop()
