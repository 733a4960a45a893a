"""Where mail for a domain goes: MX lookup with dnspython (RFC 5321 5.1, RFC 7505 null MX).

`order_mx` is the pure ordering rule; `route` asks DNS and says either which addresses to try, in order, or
that the domain bounces (NXDOMAIN, null MX) or must wait (SERVFAIL, timeout).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.nameserver
import dns.resolver
from django.conf import settings

from relay.policy import Outcome

# RFC 5321 5.1 lets a client stop after a reasonable number of addresses; Postfix's smtp_mx_address_limit is 5.
MAX_ADDRESSES = 5


def order_mx(records: Sequence[tuple[int, str]], rng: random.Random) -> list[str]:
    """Host names by ascending preference, shuffled among equal preferences (RFC 5321 5.1)."""
    shuffled = list(records)
    rng.shuffle(shuffled)
    # sorted() is stable, so the shuffle survives within each preference.
    return [host for _, host in sorted(shuffled, key=lambda record: record[0])]


def is_null_mx(records: Sequence[tuple[int, str]]) -> bool:
    """RFC 7505 3: a single MX record whose exchange is the root, "." (any preference)."""
    return len(records) == 1 and records[0][1] in {"", "."}


@dataclass(frozen=True)
class Route:
    """Either `addresses` to try as (host name, IP) in order, or an outcome with its status and reason."""

    addresses: list[tuple[str, str]] = field(default_factory=list)
    outcome: Outcome | None = None
    status: str = ""
    reason: str = ""


def _resolver() -> dns.resolver.Resolver:
    nameservers: list[tuple[str, int]] = settings.MAILSITE_DNS_NAMESERVERS
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
    resolver.lifetime = settings.MAILSITE_DNS_TIMEOUT
    resolver.timeout = settings.MAILSITE_DNS_TIMEOUT
    # Null MX and MX answers must not be served from a stale cache of another process; no cache at all.
    resolver.cache = None
    return resolver


class _TemporaryDnsFailure(Exception):
    pass


class _NoSuchDomain(Exception):
    pass


def _query(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> dns.resolver.Answer | None:
    """The answer, or None for "no records of this type" (NOERROR with no data)."""
    try:
        return resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        raise _NoSuchDomain(name) from None
    except dns.resolver.NoNameservers as exc:
        # Every server answered SERVFAIL or REFUSED (or could not be reached): the zone may be fixed soon.
        raise _TemporaryDnsFailure(f"{rdtype} lookup for {name} failed: SERVFAIL") from exc
    except dns.exception.Timeout as exc:
        raise _TemporaryDnsFailure(f"{rdtype} lookup for {name} timed out") from exc


def _addresses(resolver: dns.resolver.Resolver, host: str) -> list[str]:
    found: list[str] = []
    # IPv4 first: many hosts that run this have no IPv6 route, and a failed IPv6 connect costs a timeout.
    for rdtype in ("A", "AAAA"):
        answer = _query(resolver, host, rdtype)
        if answer is not None and answer.rrset is not None:
            found.extend(rdata.address for rdata in answer.rrset)
    return found


def route(domain: str, rng: random.Random | None = None) -> Route:
    """Resolve where mail for `domain` goes now."""
    resolver = _resolver()
    rng = rng or random.Random()
    try:
        answer = _query(resolver, domain, "MX")
        records = (
            [(rdata.preference, rdata.exchange.to_text(omit_final_dot=True)) for rdata in answer.rrset]
            if answer is not None and answer.rrset is not None
            else []
        )
        if is_null_mx(records):
            return Route(outcome=Outcome.BOUNCED, status="5.1.10", reason=f"{domain} accepts no mail (null MX)")
        # RFC 5321 5.1: without MX records the domain itself is the single, implicit MX.
        hosts = order_mx(records, rng) if records else [domain]
    except _NoSuchDomain:
        return Route(outcome=Outcome.BOUNCED, status="5.1.2", reason=f"domain {domain} does not exist (NXDOMAIN)")
    except _TemporaryDnsFailure as exc:
        return Route(outcome=Outcome.DEFERRED, status="4.4.3", reason=str(exc))
    addresses: list[tuple[str, str]] = []
    temporary = ""
    for host in hosts:
        try:
            addresses.extend((host, address) for address in _addresses(resolver, host))
        except _NoSuchDomain:
            continue
        except _TemporaryDnsFailure as exc:
            temporary = str(exc)
        if len(addresses) >= MAX_ADDRESSES:
            break
    if addresses:
        return Route(addresses=addresses[:MAX_ADDRESSES])
    if temporary:
        return Route(outcome=Outcome.DEFERRED, status="4.4.3", reason=temporary)
    if not records:
        return Route(outcome=Outcome.BOUNCED, status="5.1.2", reason=f"{domain} has no MX, A or AAAA record")
    # MX hosts that exist in DNS but have no address yet: a configuration being fixed, so wait (as Postfix does).
    return Route(outcome=Outcome.DEFERRED, status="4.4.4", reason=f"no MX host of {domain} has an address")


def host_route(host: str) -> Route:
    """The addresses of a route's host (relay.routes): no MX lookup (as Postfix's `[host]`); an IP address is
    used as it is. A name that does not resolve defers: it is our configuration, not the recipient's domain."""
    try:
        return Route(addresses=[(host, str(ipaddress.ip_address(host)))])
    except ValueError:
        pass
    try:
        found = _addresses(_resolver(), host)
    except _NoSuchDomain:
        return Route(outcome=Outcome.DEFERRED, status="4.4.4", reason=f"route host {host} does not exist (NXDOMAIN)")
    except _TemporaryDnsFailure as exc:
        return Route(outcome=Outcome.DEFERRED, status="4.4.3", reason=str(exc))
    if not found:
        return Route(outcome=Outcome.DEFERRED, status="4.4.4", reason=f"route host {host} has no address")
    return Route(addresses=[(host, address) for address in found[:MAX_ADDRESSES]])
