"""Outbound MTA-STS (RFC 8461): a recipient domain's policy, fetched over HTTPS, cached, and applied to its MX hosts.

`parse_record`, `parse_policy` and `mx_matches` are pure. `policy_for` asks DNS for the `_mta-sts` TXT record,
fetches `https://mta-sts.<domain>/.well-known/mta-sts.txt` when its id is new, and keeps the policy in the
database until its max_age runs out (RFC 8461 5.1), so an attacker who blocks the TXT record or the policy host
cannot turn enforcement off while a policy is cached.
"""

from __future__ import annotations

import datetime
import http.client
import logging
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.conf import settings
from django.utils import timezone

from relay import mx
from relay.models import MtaStsPolicy

log = logging.getLogger("mail.relay")

MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 3.3 suggests senders limit the body (as postfix-mta-sts-resolver: 64 KiB)
MAX_AGE_LIMIT = 31557600  # RFC 8461 3.2: at most about a year
_ID = re.compile(r"[A-Za-z0-9]{1,32}")  # RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT)


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    mode: str  # enforce, testing or none
    mx: tuple[str, ...]
    max_age: int


def parse_record(text: str) -> str | None:
    """The id of an `_mta-sts` TXT record ("v=STSv1; id=20160831085700Z;"), or None if it is not one (3.1)."""
    fields = [field.strip() for field in text.split(";") if field.strip()]
    if not fields or fields[0] != "v=STSv1":
        return None
    values = dict(field.partition("=")[::2] for field in fields[1:])
    policy_id = values.get("id", "")
    return policy_id if _ID.fullmatch(policy_id) else None


def parse_policy(text: str) -> Policy:
    """RFC 8461 3.2: "key: value" lines (LF or CRLF); version, mode and max_age once, mx one or more times."""
    values: dict[str, str] = {}
    patterns: list[str] = []
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if not colon:
            continue
        key, value = key.strip(), value.strip()
        if key == "mx":
            patterns.append(value.lower().rstrip("."))
        else:
            values.setdefault(key, value)  # unknown keys are ignored (3.2); the first of a repeated key counts
    if values.get("version") != "STSv1":
        raise PolicyError("the policy's version is not STSv1")
    mode = values.get("mode", "")
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError(f"unknown policy mode {mode!r}")
    max_age = values.get("max_age", "")
    if not max_age.isdigit() or len(max_age) > 10 or int(max_age) > MAX_AGE_LIMIT:
        raise PolicyError(f"max_age {max_age!r} is not a number of seconds up to {MAX_AGE_LIMIT}")
    if mode != "none" and not patterns:
        raise PolicyError("the policy names no mx")
    return Policy(mode, tuple(patterns), int(max_age))


def mx_matches(host: str, patterns: Sequence[str]) -> bool:
    """RFC 8461 4.1: an MX host matches a pattern exactly, or "*.example.net" with one more leftmost label."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            label, dot, rest = host.partition(".")
            if dot and label and rest == pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def _txt_id(domain: str) -> str | None:
    """The policy id published for `domain`; None for no record, several records (3.1) or no answer."""
    try:
        answer = mx._resolver().resolve(f"_mta-sts.{domain}", "TXT", raise_on_no_answer=False, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers, dns.exception.Timeout):
        return None
    if answer.rrset is None:
        return None
    ids = [
        parse_record(b"".join(rdata.strings).decode("ascii", "replace"))
        for rdata in answer.rrset
        if b"".join(rdata.strings).startswith(b"v=STSv1")
    ]
    return ids[0] if len(ids) == 1 else None


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.MAILSITE_RELAY_CA_FILE:
        context.load_verify_locations(settings.MAILSITE_RELAY_CA_FILE)
    return context


def _get(address: str, host: str) -> tuple[int, str, bytes]:
    """Status, media type and body (up to one byte over the limit) of the policy URL at `address`."""
    timeout = min(settings.MAILSITE_RELAY_TIMEOUT, 60.0)
    port = settings.MAILSITE_RELAY_HTTPS_PORT
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        _tls_context().wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        content_type = (response.getheader("Content-Type") or "").partition(";")[0].strip().lower()
        return response.status, content_type, response.read(MAX_POLICY_BYTES + 1)


def fetch(domain: str) -> Policy:
    """GET the policy over HTTPS with a certificate valid for mta-sts.<domain> (RFC 8461 3.3): no redirects, a
    200 of text/plain, at most MAX_POLICY_BYTES."""
    host = f"mta-sts.{domain}"
    try:
        addresses = mx._addresses(mx._resolver(), host)
    except (mx._NoSuchDomain, mx._TemporaryDnsFailure) as exc:
        raise PolicyError(f"{host} has no address: {exc}") from None
    if not addresses:
        raise PolicyError(f"{host} has no address")
    try:
        status, content_type, body = _get(addresses[0], host)
    except (OSError, http.client.HTTPException) as exc:
        raise PolicyError(f"fetching the policy from {host} failed: {exc}") from None
    if status != 200:
        raise PolicyError(f"{host} answered HTTP {status}")
    if content_type != "text/plain":
        raise PolicyError(f"{host} served {content_type or 'no media type'}, not text/plain")
    if len(body) > MAX_POLICY_BYTES:
        raise PolicyError(f"{host} served a policy over {MAX_POLICY_BYTES} bytes")
    return parse_policy(body.decode("utf-8", "replace"))


def policy_for(domain: str) -> Policy | None:
    """The policy that applies to mail for `domain` now, or None (no policy, or mode none)."""
    from mailboxes.actions import outbound

    now = timezone.now()
    cached = MtaStsPolicy.objects.filter(domain=domain, expires__gt=now).first()
    policy_id = _txt_id(domain)
    if policy_id is not None and (cached is None or cached.policy_id != policy_id):
        try:
            fetched = fetch(domain)
        except PolicyError as exc:
            # RFC 8461 5.1: a policy that cannot be fetched leaves the cached one in force.
            log.warning("relay mta-sts fetch failed domain=%s id=%s problem=%r", domain, policy_id, str(exc))
        else:
            expires = now + datetime.timedelta(seconds=fetched.max_age)
            outbound.remember_policy(domain, policy_id, fetched.mode, list(fetched.mx), fetched.max_age, expires)
            return fetched if fetched.mode != "none" else None
    if cached is None or cached.mode == "none":
        return None
    return Policy(cached.mode, tuple(cached.mx), cached.max_age)
