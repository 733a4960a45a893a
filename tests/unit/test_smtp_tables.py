"""A session gets aiosmtpd's command, hook and AUTH tables from a cache: the same tables aiosmtpd builds itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP

from ops.limits import LeasedConnectionCounter
from smtpd import policy
from smtpd.batching import DeliveryGroups
from smtpd.handler import Handler
from smtpd.protocol import MailsiteSMTP
from smtpd.server import session_limits


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _options(role: policy.ListenerRole, loop: asyncio.AbstractEventLoop) -> dict[str, object]:
    return {
        "hostname": "mx.example.test",
        "auth_required": role.submission,
        "auth_require_tls": True,
        "auth_exclude_mechanism": () if role.submission else ("PLAIN", "LOGIN"),
        "loop": loop,
    }


def _aiosmtpd_own(handler: Handler, role: policy.ListenerRole, loop: asyncio.AbstractEventLoop) -> MailsiteSMTP:
    """A session whose tables aiosmtpd's own `__init__` built, listing the session and the handler itself."""
    session = MailsiteSMTP.__new__(MailsiteSMTP)
    SMTP.__init__(session, handler, **_options(role, loop))  # type: ignore[arg-type]
    return session


def _functions(table: dict[str, object]) -> dict[str, object]:
    return {name: getattr(method, "__func__", method) for name, method in table.items()}


def _mechanisms(session: MailsiteSMTP) -> dict[str, tuple[bool, object]]:
    return {name: (m.is_builtin, getattr(m.method, "__func__", m.method)) for name, m in session._auth_methods.items()}


@pytest.mark.parametrize("role", [policy.MX, policy.SUBMISSION], ids=lambda role: role.name)
def test_a_sessions_tables_are_the_ones_aiosmtpd_builds(role, loop):
    handler = Handler(role, DeliveryGroups(max_in_flight=1))
    counter = LeasedConnectionCounter.__new__(LeasedConnectionCounter)  # not used: no connection is made
    cached = [
        MailsiteSMTP(handler, role=role, limits=session_limits(), connections=counter, **_options(role, loop))
        for _ in range(2)  # the second from the cache
    ][1]
    own = _aiosmtpd_own(handler, role, loop)

    assert cached.event_handler is handler
    assert cached._handle_hooks == own._handle_hooks
    assert cached._ehlo_hook_ver == own._ehlo_hook_ver == "new"
    assert _functions(cached._smtp_methods) == _functions(own._smtp_methods)
    assert {"EHLO", "MAIL", "RCPT", "DATA", "BDAT", "QUIT", "AUTH", "ETRN"} <= set(cached._smtp_methods)
    assert all(method.__self__ is cached for method in cached._smtp_methods.values())
    assert _mechanisms(cached) == _mechanisms(own)
    assert all(m.method.__self__ is cached for m in cached._auth_methods.values() if m.is_builtin)
    if role.submission:
        assert {"PLAIN", "LOGIN"} <= set(cached._auth_methods)
    else:
        assert not {"PLAIN", "LOGIN"} & set(cached._auth_methods)
    assert "smtp_EHLO" in dir(cached)  # listed again once built
