"""TLS for every listener: the configured certificate, or a self-signed pair made once in the data dir."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings


def certificate_paths() -> tuple[Path, Path]:
    """The certificate and key files to serve, generating a self-signed pair on first use."""
    if settings.MAILSITE_TLS_CERT and settings.MAILSITE_TLS_KEY:
        return settings.MAILSITE_TLS_CERT, settings.MAILSITE_TLS_KEY
    cert_path = settings.DATA_DIR / "tls" / "cert.pem"
    key_path = settings.DATA_DIR / "tls" / "key.pem"
    if not (cert_path.exists() and key_path.exists()):
        write_self_signed(cert_path, key_path, settings.MAILSITE_HOSTNAME)
    return cert_path, key_path


def write_self_signed(cert_path: Path, key_path: Path, hostname: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(hostname),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@cache
def server_context() -> ssl.SSLContext:
    """One server-side context for every listener in the process (STARTTLS and implicit TLS alike)."""
    cert, key = certificate_paths()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def plaintext_login_allowed(remote_ip: str | None) -> bool:
    """Whether a client may send a password before TLS: from loopback, or when MAILSITE_ALLOW_PLAINTEXT_AUTH is
    set. Everyone else must use STARTTLS/STLS or the implicit-TLS port first (RFC 8314 4, RFC 2595 2.3)."""
    if settings.MAILSITE_ALLOW_PLAINTEXT_AUTH:
        return True
    try:
        return ipaddress.ip_address((remote_ip or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False
