"""Test zones for message authentication: DKIM keys published in the loopback DNS server, signing helpers."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.dns_server import DnsServer


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    public_b64: str


@cache
def signing_key(name: str = "default") -> SigningKey:
    """An RSA-1024 pair (the smallest size verifiers accept), one per name for the whole run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(private, base64.b64encode(public).decode())


def txt_value(text: str) -> str:
    """A TXT rdata in zone-file syntax, split into strings of at most 255 octets (RFC 1035 3.3.14)."""
    return " ".join(f'"{text[i : i + 250]}"' for i in range(0, len(text), 250))


def publish_key(dns: DnsServer, domain: str, selector: str = "sel", key: SigningKey | None = None) -> None:
    key = key or signing_key()
    dns.add(f"{selector}._domainkey.{domain}", "TXT", txt_value(f"v=DKIM1; k=rsa; p={key.public_b64}"))


def dkim_sign(raw: bytes, domain: str, selector: str = "sel", key: SigningKey | None = None) -> bytes:
    """`raw` with a DKIM-Signature of `domain` prepended (relaxed/relaxed)."""
    key = key or signing_key()
    field = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        key.private_pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    return field + raw


def arc_seal(raw: bytes, domain: str, selector: str = "sel", key: SigningKey | None = None) -> bytes:
    """What a forwarder at `domain` does: record its results, then add an ARC set over them (RFC 8617 4)."""
    key = key or signing_key()
    with_results = f"Authentication-Results: {domain}; dkim=pass header.d={domain}\r\n".encode() + raw
    fields = dkim.arc_sign(
        with_results, selector.encode(), domain.encode(), key.private_pem, domain.encode(), timestamp="1700000000"
    )
    return b"".join(fields) + with_results
