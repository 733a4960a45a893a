"""TLS for every listener: the configured certificate, the ACME one (`mailsite.acme`), or a self-signed pair.

Every listener of a process shares one SSLContext. When the certificate files change (an ACME renewal, or an
operator replacing MAILSITE_TLS_CERT), `reload_if_changed` loads them into that same context: handshakes from
then on present the new certificate, while sessions already open keep theirs, so nothing restarts or drops.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
import weakref
from functools import cache
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)


def certificate_paths() -> tuple[Path, Path]:
    """The certificate and key files to serve: the configured pair, else the ACME pair once there is one, else
    a self-signed pair made on first use (also what an ACME setup serves until its first certificate)."""
    if settings.MAILSITE_TLS_CERT and settings.MAILSITE_TLS_KEY:
        return settings.MAILSITE_TLS_CERT, settings.MAILSITE_TLS_KEY
    if settings.MAILSITE_ACME:
        from mailsite import acme

        cert, key = acme.certificate_files()
        if cert.exists() and key.exists():
            return cert, key
    cert_path = settings.DATA_DIR / "tls" / "cert.pem"
    key_path = settings.DATA_DIR / "tls" / "key.pem"
    if not (cert_path.exists() and key_path.exists()):
        write_self_signed(cert_path, key_path, settings.MAILSITE_HOSTNAME)
    return cert_path, key_path


def write_self_signed(cert_path: Path, key_path: Path, hostname: str) -> None:
    # cryptography is imported here, by the one process that makes the pair, not by every listener.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

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


FileState = tuple[Path, Path, int, int]  # the files and their modification times
_loaded: dict[int, FileState] = {}  # id of the context -> the files it holds


def _state(cert: Path, key: Path) -> FileState:
    return cert, key, cert.stat().st_mtime_ns, key.stat().st_mtime_ns


# Mozilla's "intermediate" server profile (version 5.7): forward secrecy and AEAD only, so no CBC suite under
# TLS 1.2 (Lucky Thirteen and its kin), while every client of the last ten years still finds one.
INTERMEDIATE_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    ]
)


@cache
def server_context() -> ssl.SSLContext:
    """One server-side context for every listener in the process (STARTTLS and implicit TLS alike)."""
    cert, key = certificate_paths()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(INTERMEDIATE_CIPHERS)  # TLS 1.2 suites; TLS 1.3 has only AEAD suites anyway
    state = _state(cert, key)
    context.load_cert_chain(cert, key)
    _loaded[id(context)] = state
    return context


def reload_if_changed() -> bool:
    """Load changed certificate files into the process's context; True if it now holds a new certificate.

    A pair that does not load (a key written but not yet its certificate) leaves the old one in place until
    the next call.
    """
    if server_context.cache_info().currsize == 0:
        return False  # no listener has asked for TLS in this process yet
    context = server_context()
    try:
        cert, key = certificate_paths()
        state = _state(cert, key)
        if state == _loaded.get(id(context)):
            return False
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        log.warning("TLS certificate not reloaded, keeping the current one: %s", exc)
        return False
    _loaded[id(context)] = state
    log.info("TLS certificate reloaded from %s", cert)
    return True


async def _watch() -> None:
    while True:
        await asyncio.sleep(settings.MAILSITE_TLS_RELOAD_INTERVAL)
        reload_if_changed()


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def watch_in_background() -> None:
    """Check the certificate files every MAILSITE_TLS_RELOAD_INTERVAL seconds while the running loop runs."""
    loop = asyncio.get_running_loop()
    if loop not in _watchers or _watchers[loop].done():
        _watchers[loop] = loop.create_task(_watch(), name="mailsite-certificate-watch")


def plaintext_login_allowed(remote_ip: str | None) -> bool:
    """Whether a client may send a password before TLS: from loopback, or when MAILSITE_ALLOW_PLAINTEXT_AUTH is
    set. Everyone else must use STARTTLS/STLS or the implicit-TLS port first (RFC 8314 4, RFC 2595 2.3)."""
    if settings.MAILSITE_ALLOW_PLAINTEXT_AUTH:
        return True
    try:
        return ipaddress.ip_address((remote_ip or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False
