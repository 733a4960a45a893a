"""The shared server context takes a renewed certificate in place, and keeps the old one while a pair is half
written. Handshakes run over memory BIOs: no sockets."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from mailsite import tls


def served_certificate(server: ssl.SSLContext, trust: ssl.SSLContext) -> x509.Certificate:
    """One in-memory handshake between `server` and a client trusting `trust`: the certificate presented."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = trust.wrap_bio(client_in, client_out, server_hostname="mx.mailsite.test")
    peer = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for side in (client, peer):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pair(settings, tmp_path: Path, ca: trustme.CA) -> Iterator[tuple[Path, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued = ca.issue_cert("mx.mailsite.test")
    issued.private_key_pem.write_to_path(key)
    issued.cert_chain_pems[0].write_to_path(cert)
    settings.MAILSITE_TLS_CERT, settings.MAILSITE_TLS_KEY = cert, key
    tls.server_context.cache_clear()
    yield cert, key
    tls.server_context.cache_clear()


def touch_later(path: Path, step: int) -> None:
    """A modification time surely different from the previous write's (coarse file system clocks)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + step * 1_000_000_000))


def test_renewed_pair_is_loaded_into_the_same_context(pair, ca: trustme.CA) -> None:
    cert, key = pair
    context = tls.server_context()
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    first = served_certificate(context, trust)
    assert tls.reload_if_changed() is False  # nothing changed

    renewed = ca.issue_cert("mx.mailsite.test")
    renewed.private_key_pem.write_to_path(key)
    touch_later(key, 1)
    # Only the key is new so far: the pair does not match, and the old certificate stays in service.
    assert tls.reload_if_changed() is False
    assert served_certificate(context, trust).serial_number == first.serial_number

    renewed.cert_chain_pems[0].write_to_path(cert)
    touch_later(cert, 2)
    assert tls.reload_if_changed() is True
    assert tls.server_context() is context
    second = served_certificate(context, trust)
    assert second.serial_number != first.serial_number
    assert tls.reload_if_changed() is False
