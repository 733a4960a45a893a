"""Production hardening: a real secret key, and HTTPS only with the proxy headers of trusted proxies alone.

`mailsite/settings.py` applies these whenever the database is not the embedded SQLite of `make run`, unless
MAILSITE_INSECURE_HTTP=true says a development setup serves plain HTTP on purpose.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse

from mailsite.env import SettingError

# Values copied from examples and old compose files; a key anyone can read signs anyone's session.
KNOWN_WEAK_SECRET_KEYS = frozenset({"change-me", "changeme", "secret", "secret-key", "mailsite", "password", "test"})
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_DISTINCT = 8

# Paths plain HTTP keeps serving: ACME HTTP-01 challenges (RFC 8555 8.3 fetches them over port 80) and mail
# client auto-configuration, which some clients only try over HTTP. Django matches them against the path
# without its leading slash (SECURE_REDIRECT_EXEMPT).
REDIRECT_EXEMPT = [
    r"^\.well-known/acme-challenge/",
    r"^\.well-known/autoconfig/",
    r"(?i)^autodiscover/",
    r"^mail/config-v1\.1\.xml$",
]
HSTS_SECONDS = 365 * 24 * 3600


def check_secret_key(key: str) -> None:
    """Refuse a missing, short or published MAILSITE_SECRET_KEY."""
    if not key:
        raise SettingError(
            "MAILSITE_SECRET_KEY must be set (python3 -c 'import secrets; print(secrets.token_urlsafe(50))' makes one)"
        )
    if (
        key.lower() in KNOWN_WEAK_SECRET_KEYS
        or key.startswith("django-insecure")
        or len(key) < MIN_SECRET_KEY_LENGTH
        or len(set(key)) < MIN_SECRET_KEY_DISTINCT
    ):
        raise SettingError(
            f"MAILSITE_SECRET_KEY is a known or weak value; use at least {MIN_SECRET_KEY_LENGTH} random characters"
        )


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(name: str, items: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks (MAILSITE_TRUSTED_PROXIES)."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingError(
                f"{name} entries must be IP addresses or networks such as 10.0.0.0/8, got {item!r}"
            ) from None
    return tuple(networks)


def is_trusted(remote_ip: str | None, networks: Iterable[Network]) -> bool:
    try:
        address = ipaddress.ip_address((remote_ip or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class TrustedProxyMiddleware:
    """Drop X-Forwarded-Proto unless the connection comes from a configured proxy.

    Django's SECURE_PROXY_SSL_HEADER believes the header from anyone; a client talking to the web listener
    directly could otherwise claim HTTPS over plain HTTP and be handed secure cookies in the clear.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.networks = settings.MAILSITE_TRUSTED_PROXIES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_X_FORWARDED_PROTO" in request.META and not is_trusted(request.META.get("REMOTE_ADDR"), self.networks):
            del request.META["HTTP_X_FORWARDED_PROTO"]
        return self.get_response(request)
