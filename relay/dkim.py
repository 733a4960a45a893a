"""DKIM signing of outbound mail from local domains (RFC 6376, dkimpy), and the DNS records to publish.

Every process that stores mail imports this module (delivery queues outbound copies), but only the ones that
sign or make keys need dkimpy, its DNS stack and cryptography: those are imported where they are used."""

from __future__ import annotations

import base64

from django.conf import settings
from django.db import IntegrityError, transaction

from mailboxes.models import Domain
from relay.models import DkimKey

# Signed when present. From is listed twice so a second From added later breaks the signature (RFC 6376 8.15).
SIGNED_HEADERS = [
    b"from",
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
]


def _new_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def key_for(domain: Domain) -> DkimKey:
    """The domain's key, generated (RSA 2048) the first time it is needed."""
    existing = DkimKey.objects.filter(domain=domain).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return DkimKey.objects.create(
                domain=domain, selector=settings.MAILSITE_DKIM_SELECTOR, private_key=_new_private_key()
            )
    except IntegrityError:
        # Another process generated it at the same moment; theirs is the one.
        return DkimKey.objects.get(domain=domain)


def public_key_base64(key: DkimKey) -> str:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.private_key.encode(), password=None)
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def txt_record(key: DkimKey) -> tuple[str, str]:
    """(name, value) of the TXT record that publishes the key."""
    return f"{key.selector}._domainkey.{key.domain.name}", f"v=DKIM1; k=rsa; p={public_key_base64(key)}"


def spf_record(domain: str) -> tuple[str, str]:
    # Mail for the domain leaves from this host, named in the domain's MX; ~all until the admin is sure.
    return domain, f"v=spf1 mx a:{settings.MAILSITE_HOSTNAME} ~all"


def dmarc_record(domain: str) -> tuple[str, str]:
    return f"_dmarc.{domain}", f"v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@{domain}"


def sign(raw: bytes, domain: Domain) -> bytes:
    """`raw` with a DKIM-Signature header for `domain` prepended (relaxed/relaxed, rsa-sha256)."""
    import dkim

    key = key_for(domain)

    signature = dkim.sign(
        raw,
        key.selector.encode(),
        domain.name.encode(),
        key.private_key.encode(),
        include_headers=SIGNED_HEADERS,
        canonicalize=(b"relaxed", b"relaxed"),
        linesep=b"\r\n",
    )
    return signature + raw
