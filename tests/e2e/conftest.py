"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.smtp_support import RawSession


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
