"""The PROXY protocol, versions 1 and 2 (HAProxy's proxy-protocol.txt), without I/O.

A TCP load balancer in front of the listeners opens each connection with one header that names the client's
real address. `parse` reads that header from the first bytes of a connection: it returns the header once it is
complete, None while the bytes so far are the start of one (read more), and raises `ProxyError` for anything
else. Only connections from MAILSITE_PROXY_PROTOCOL_FROM may (and must) send a header; anyone else could claim
any address with it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass

# proxy-protocol.txt 2.2: chosen so that no text protocol's first line starts like it.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # 2.1: the longest v1 header, CRLF included
MIN_HEADER = 15  # "PROXY UNKNOWN\r\n": nothing shorter is a header of either version, so reading 15 is safe
# 2.2: the version and command byte, the family and transport byte, the length of the rest (network order).
_V2_FIXED = struct.Struct("!12sBBH")
_V2_INET = struct.Struct("!4s4sHH")
_V2_INET6 = struct.Struct("!16s16sHH")
# A v2 header with the LOCAL command and no addresses: what a health check on the balancer's side sends.
LOCAL_HEADER = V2_SIGNATURE + bytes([0x20, 0x00, 0x00, 0x00])

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyError(ValueError):
    """Not a valid PROXY protocol header."""


@dataclass(frozen=True)
class ProxyHeader:
    version: int
    length: int  # octets of the connection the header took
    # The client's and the balancer's address and port; None for LOCAL (v2) and UNKNOWN (v1), where the
    # connection's own addresses are the real ones (a health check of the balancer, 2.1 and 2.2).
    source: tuple[str, int] | None = None
    destination: tuple[str, int] | None = None


def trusted(address: str, networks: Sequence[Network]) -> bool:
    """Whether a peer at `address` is a balancer whose PROXY headers we take."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def looks_like_header(data: bytes) -> bool:
    """Whether a connection's first bytes start a PROXY header (from a peer not trusted to send one)."""
    if data.startswith(V1_PREFIX[: len(data)]) and len(data) >= 5:
        return True
    return len(data) >= 4 and data.startswith(V2_SIGNATURE[: len(data)])


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`; None if `data` is a proper prefix of one."""
    if data[:1] == b"\r" and V2_SIGNATURE.startswith(data[:12]):
        return _parse_v2(data)
    if V1_PREFIX.startswith(data[:6]):
        return _parse_v1(data)
    raise ProxyError("the connection does not start with a PROXY protocol header")


def missing(data: bytes) -> int:
    """Octets still needed to complete a v2 header that `parse` found incomplete, without reading past it."""
    if len(data) < _V2_FIXED.size:
        return _V2_FIXED.size - len(data)
    return _V2_FIXED.size + _V2_FIXED.unpack_from(data)[3] - len(data)


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data:
            raise ProxyError("PROXY v1 header without CRLF within 107 octets")
        return None
    if end + 2 > V1_MAX:
        raise ProxyError("PROXY v1 header longer than 107 octets")
    line = data[:end]
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyError("PROXY v1 header is not ASCII") from None
    fields = text.split(" ")
    # 2.1: "UNKNOWN" may be followed by anything, which the receiver ignores.
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxyHeader(version=1, length=end + 2)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyError(f"malformed PROXY v1 header {text[:107]!r}")
    _, family, source, destination, source_port, destination_port = fields
    version = 4 if family == "TCP4" else 6
    return ProxyHeader(
        version=1,
        length=end + 2,
        source=(_v1_address(source, version), _v1_port(source_port)),
        destination=(_v1_address(destination, version), _v1_port(destination_port)),
    )


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.IPv4Address(text) if version == 4 else ipaddress.IPv6Address(text)
    except ValueError:
        raise ProxyError(f"PROXY v1: {text!r} is not an IPv{version} address") from None
    return str(address)


def _v1_port(text: str) -> int:
    # 2.1: decimal, 0 to 65535, without leading zeros.
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise ProxyError(f"PROXY v1: {text!r} is not a port number")
    return int(text)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < _V2_FIXED.size:
        return None
    signature, version_command, family_transport, length = _V2_FIXED.unpack_from(data)
    if signature != V2_SIGNATURE:
        raise ProxyError("bad PROXY v2 signature")
    if version_command >> 4 != 2:
        raise ProxyError(f"PROXY v2: unsupported version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyError(f"PROXY v2: unknown command {command}")
    total = _V2_FIXED.size + length
    if len(data) < total:
        return None
    block = data[_V2_FIXED.size : total]  # addresses, then TLVs we do not need (2.2.x)
    if command == 0:  # LOCAL: the connection was made by the balancer itself
        return ProxyHeader(version=2, length=total)
    family, transport = family_transport >> 4, family_transport & 0x0F
    if family == 0:  # AF_UNSPEC: addresses unknown, use the connection's own
        return ProxyHeader(version=2, length=total)
    if transport != 1:
        raise ProxyError("PROXY v2: not a stream connection")
    if family == 1:
        layout, kind = _V2_INET, ipaddress.IPv4Address
    elif family == 2:
        layout, kind = _V2_INET6, ipaddress.IPv6Address  # type: ignore[assignment]
    else:
        raise ProxyError("PROXY v2: not an IPv4 or IPv6 connection")
    if len(block) < layout.size:
        raise ProxyError("PROXY v2: address block shorter than its family needs")
    source, destination, source_port, destination_port = layout.unpack_from(block)
    return ProxyHeader(
        version=2,
        length=total,
        source=(str(kind(source)), source_port),
        destination=(str(kind(destination)), destination_port),
    )


def v2_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A v2 PROXY header for a TCP connection (what a balancer sends; used by tests and health checks)."""
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError("both addresses must be of one family")
    layout = _V2_INET if src.version == 4 else _V2_INET6
    block = layout.pack(src.packed, dst.packed, source[1], destination[1])
    family = 0x11 if src.version == 4 else 0x21
    return _V2_FIXED.pack(V2_SIGNATURE, 0x21, family, len(block)) + block
