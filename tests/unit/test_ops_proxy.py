"""The PROXY protocol parser (ops/proxy.py), byte by byte: complete headers, prefixes, and refusals."""

from __future__ import annotations

import ipaddress

import pytest

from ops import proxy
from ops.proxy import ProxyError, ProxyHeader

SIG = b"\r\n\r\n\x00\r\nQUIT\n"

V1 = [
    (
        b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n",
        ProxyHeader(1, 45, ("192.0.2.10", 56324), ("198.51.100.1", 25)),
    ),
    (
        b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 587\r\n",
        ProxyHeader(1, 46, ("2001:db8::7", 65535), ("2001:db8::1", 587)),
    ),
    (b"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", ProxyHeader(1, 32, ("0.0.0.0", 0), ("0.0.0.0", 0))),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, 15)),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ProxyHeader(1, 35)),
]

V2_TCP4 = SIG + bytes([0x21, 0x11, 0x00, 12]) + bytes([192, 0, 2, 10, 198, 51, 100, 1]) + b"\xdc\x04\x00\x19"
V2_TCP6 = (
    SIG
    + bytes([0x21, 0x21, 0x00, 36])
    + ipaddress.IPv6Address("2001:db8::7").packed
    + ipaddress.IPv6Address("2001:db8::1").packed
    + b"\x01\xbb\x00\x6e"
)
# HAProxy appends TLVs after the addresses (here PP2_TYPE_UNIQUE_ID, 0x05, of 4 octets): skipped.
V2_TLV = SIG + bytes([0x21, 0x11, 0x00, 19]) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + b"\x00\x01\x00\x02\x05\x00\x04abcd"
V2 = [
    (V2_TCP4, ProxyHeader(2, 28, ("192.0.2.10", 56324), ("198.51.100.1", 25))),
    (V2_TCP6, ProxyHeader(2, 52, ("2001:db8::7", 443), ("2001:db8::1", 110))),
    (V2_TLV, ProxyHeader(2, 35, ("10.0.0.1", 1), ("10.0.0.2", 2))),
    (proxy.LOCAL_HEADER, ProxyHeader(2, 16)),
    # LOCAL with an address block: the block is skipped and the connection's own addresses stand.
    (SIG + bytes([0x20, 0x11, 0x00, 12]) + bytes(12), ProxyHeader(2, 28)),
    # PROXY with AF_UNSPEC: no usable addresses either.
    (SIG + bytes([0x21, 0x00, 0x00, 0x00]), ProxyHeader(2, 16)),
]


@pytest.mark.parametrize(("data", "header"), V1 + V2)
def test_a_complete_header_is_read_and_what_follows_is_left(data: bytes, header: ProxyHeader) -> None:
    assert proxy.parse(data) == header
    assert proxy.parse(data + b"EHLO client.example\r\n") == header
    assert header.length == len(data)


@pytest.mark.parametrize(("data", "header"), V1 + V2)
def test_every_proper_prefix_asks_for_more(data: bytes, header: ProxyHeader) -> None:
    for end in range(len(data)):
        assert proxy.parse(data[:end]) is None, data[:end]


def test_the_balancers_header_round_trips() -> None:
    made = proxy.v2_header(("203.0.113.9", 40000), ("192.0.2.1", 25))
    assert proxy.parse(made) == ProxyHeader(2, 28, ("203.0.113.9", 40000), ("192.0.2.1", 25))
    assert made == SIG + bytes([0x21, 0x11, 0x00, 12]) + bytes([203, 0, 113, 9, 192, 0, 2, 1]) + b"\x9c\x40\x00\x19"


@pytest.mark.parametrize(
    "data",
    [
        b"EHLO client.example\r\n",  # a client that is not a balancer
        b"USER alice\r\n",
        b"proxy TCP4 192.0.2.10 198.51.100.1 1 2\r\n",  # the keyword is case-sensitive
        b"PROXY TCP4 192.0.2.10 198.51.100.1 1 2\n",  # bare LF
        b"PROXY TCP4 192.0.2.10  198.51.100.1 1 2\r\n",  # two spaces
        b"PROXY TCP4 192.0.2.10 198.51.100.1 1\r\n",  # a field missing
        b"PROXY TCP4 192.0.2.10 198.51.100.1 1 2 3\r\n",  # one too many
        b"PROXY TCP5 192.0.2.10 198.51.100.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",  # family and address disagree
        b"PROXY TCP6 192.0.2.10 2001:db8::1 1 2\r\n",
        b"PROXY TCP4 192.0.2.010 198.51.100.1 1 2\r\n",  # leading zero in an octet
        b"PROXY TCP4 192.0.2.10 198.51.100.1 65536 2\r\n",
        b"PROXY TCP4 192.0.2.10 198.51.100.1 025 2\r\n",  # leading zero in a port
        b"PROXY TCP4 192.0.2.10 198.51.100.1 -1 2\r\n",
        b"PROXY TCP4 192.0.2.10 198.51.100.1 \xd9\xa1 2\r\n",  # not ASCII
        b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",  # over 107 octets
        b"PROXY " + b"A" * 101,  # 107 octets and still no CRLF
        b"\r\n\r\n\x00\r\nQUIX\n" + bytes(4),  # bad signature
        b"\r\nQUIT\r\n",
        SIG + bytes([0x11, 0x11, 0x00, 12]) + bytes(12),  # version 1 in the binary format
        SIG + bytes([0x22, 0x11, 0x00, 12]) + bytes(12),  # command 2
        SIG + bytes([0x21, 0x12, 0x00, 12]) + bytes(12),  # UDP
        SIG + bytes([0x21, 0x31, 0x00, 216]) + bytes(216),  # AF_UNIX
        SIG + bytes([0x21, 0x11, 0x00, 8]) + bytes(8),  # address block too short for IPv4
        SIG + bytes([0x21, 0x21, 0x00, 12]) + bytes(12),  # too short for IPv6
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyError):
        proxy.parse(data)


def test_reading_the_shortest_header_never_reads_past_one() -> None:
    assert min(len(data) for data, _ in V1 + V2) == proxy.MIN_HEADER


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PROXY TCP4 ", True),
        (b"PROXY", True),
        (V2_TCP4, True),
        (SIG[:4], True),
        (b"EHLO x\r\n", False),
        (b"\r\n", False),
        (b"PRO", False),
        (b"QUIT\r\n", False),
    ],
)
def test_a_header_from_an_untrusted_peer_is_recognised(data: bytes, expected: bool) -> None:
    assert proxy.looks_like_header(data) is expected


def test_trusted_networks() -> None:
    networks = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")]
    assert proxy.trusted("10.1.2.3", networks)
    assert proxy.trusted("::ffff:10.1.2.3", networks)  # a dual-stack socket's view of an IPv4 peer
    assert proxy.trusted("2001:db8::5", networks)
    assert not proxy.trusted("192.0.2.1", networks)
    assert not proxy.trusted("unknown", networks)
    assert not proxy.trusted("127.0.0.1", [])
