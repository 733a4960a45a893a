"""The web behind trusted proxies (MAILSITE_TRUSTED_PROXIES): the client address is the right-most address of
X-Forwarded-For that is not a trusted proxy, as nginx's real_ip module takes it; from anyone else the header is
ignored. The address shows where it matters: the sign-in throttle records it."""

from __future__ import annotations

import http.client
import ipaddress
import re
import urllib.parse
from collections.abc import Iterator

import pytest

from mailboxes.models import AuthFailure
from mailsite import web
from tests.conftest import LoopThread

PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


@pytest.fixture
def web_port(transactional_db, settings, make_account, end_stray_connections) -> Iterator[int]:
    make_account("alice@example.com")
    settings.MAILSITE_TRUSTED_PROXIES = PROXIES
    settings.MAILSITE_HTTP_PORT = 0
    settings.MAILSITE_HTTPS_PORT = None
    loop = LoopThread()
    [listener] = loop.run(web.start_listeners())
    yield listener.port
    loop.run(listener.close())
    loop.stop()


def failed_sign_in(port: int, source: str, forwarded: str | None) -> str:
    """Sign in with a wrong password from `source`, with this X-Forwarded-For; the address recorded."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", "/login/")
        page = connection.getresponse()
        html = page.read().decode()
        cookie = page.getheader("Set-Cookie", "").split(";")[0]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "address": "alice@example.com", "password": "wrong"}
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        connection.request("POST", "/login/", body=form, headers=headers)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 401
    finally:
        connection.close()
    failure = AuthFailure.objects.latest("id")
    assert failure.protocol == "web"
    return failure.remote_ip


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("203.0.113.9", "203.0.113.9"),
        # A client may put anything in front; the address our own proxies appended is the one believed.
        ("198.51.100.1, 203.0.113.9", "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        (None, "127.0.0.1"),
    ],
    ids=["one-hop", "spoofed-left", "two-proxies", "no-header"],
)
def test_a_trusted_proxy_names_the_client(web_port, forwarded, client) -> None:
    assert failed_sign_in(web_port, "127.0.0.1", forwarded) == client


def test_the_header_from_elsewhere_is_ignored(web_port) -> None:
    assert failed_sign_in(web_port, "127.0.0.5", "203.0.113.9") == "127.0.0.5"
