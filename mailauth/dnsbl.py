"""DNS blocklists for connecting clients (RFC 5782), asked through dnsquery (blocking: run off the loop)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mailauth import dnsquery


def query_name(ip: str, zone: str) -> str | None:
    """RFC 5782 2.1 and 2.4: the address's octets (IPv4) or nibbles (IPv6) reversed, under the zone."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    labels = address.reverse_pointer.rsplit(".", 2)[0]  # drop "in-addr.arpa" / "ip6.arpa"
    return f"{labels}.{zone.strip('.')}"


def _is_listing(value: str) -> bool:
    # RFC 5782 2.3: listings are A records in 127.0.0.0/8; 127.255.255.x are the error answers some lists
    # (Spamhaus) give to resolvers they refuse, which say nothing about the client.
    address = ipaddress.ip_address(value)
    return address in ipaddress.ip_network("127.0.0.0/8") and not value.startswith("127.255.255.")


def listing_zone(ip: str, zones: Sequence[str], *, timeout: float) -> str | None:
    """The first zone that lists `ip`; a zone that cannot be asked counts as not listing (the MX stays open)."""
    for zone in zones:
        name = query_name(ip, zone)
        if name is None:
            return None
        try:
            records = dnsquery.lookup(name, "A", timeout=timeout)
        except dnsquery.TemporaryDnsError:
            continue
        if any(_is_listing(record.address) for record in records):
            return zone
    return None
