"""Certificates without hand work: ACME (RFC 8555) with certbot's `acme` library, HTTP-01 answered by our web.

One certificate covers the hostname and MAILSITE_ACME_NAMES and is served by every listener (web, SMTP,
submission, POP3, IMAP; see `mailsite.tls`). `obtain_if_due` asks the CA for a new one when there is none or
the current one expires within MAILSITE_ACME_RENEW_DAYS; it runs from Celery beat (`mailsite.acme.renew`) and
`manage.py acme`. The challenge responses live in the database (`credentials.AcmeChallenge`), so whichever
web process the CA reaches answers. The certificate files are written key first, each by an atomic rename;
listeners notice the change and load the pair into their running SSLContext (`tls.reload_if_changed`).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from pathlib import Path

import josepy
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from credentials.models import AcmeChallenge

log = logging.getLogger(__name__)

ORDER_TIMEOUT = datetime.timedelta(minutes=3)  # validation and issuance together
USER_AGENT = "mailsite"


def _directory() -> Path:
    return settings.DATA_DIR / "acme"


def certificate_files() -> tuple[Path, Path]:
    return _directory() / "cert.pem", _directory() / "key.pem"


def names() -> list[str]:
    """The names the certificate covers: the hostname first (the subject), then the extra names."""
    return list(dict.fromkeys([settings.MAILSITE_HOSTNAME, *settings.MAILSITE_ACME_NAMES]))


def not_after() -> datetime.datetime | None:
    cert, _ = certificate_files()
    try:
        return x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def is_due(now: datetime.datetime | None = None) -> bool:
    """No certificate yet, one for other names, or one expiring within the renewal window."""
    cert, _ = certificate_files()
    try:
        current = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError):
        return True
    try:
        alternative = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        covered = set(alternative.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        covered = set()
    if not set(names()) <= covered:
        return True
    now = now or datetime.datetime.now(datetime.UTC)
    return current.not_valid_after_utc - now <= datetime.timedelta(days=settings.MAILSITE_ACME_RENEW_DAYS)


def _write_private(path: Path, data: bytes) -> None:
    """Write beside the target and rename over it, so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def _account_key() -> josepy.JWKRSA:
    path = _directory() / "account.json"
    if path.exists():
        return josepy.JWKRSA.json_loads(path.read_text())
    key = josepy.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _write_private(path, json.dumps(key.to_json()).encode())
    return key


def _client() -> client.ClientV2:
    # A private CA (a test server, step-ca) may sign its directory's HTTPS with a CA of its own; requests takes
    # a bundle path where the acme library's annotation says bool.
    verify: bool | str = str(settings.MAILSITE_ACME_CA_BUNDLE) if settings.MAILSITE_ACME_CA_BUNDLE else True
    net = client.ClientNetwork(_account_key(), user_agent=USER_AGENT, verify_ssl=verify)  # type: ignore[arg-type]
    directory = client.ClientV2.get_directory(settings.MAILSITE_ACME_DIRECTORY, net)
    acme_client = client.ClientV2(directory, net)
    registration = messages.NewRegistration.from_data(
        email=settings.MAILSITE_ACME_EMAIL or None, terms_of_service_agreed=True
    )
    try:
        net.account = acme_client.new_account(registration)
    except errors.ConflictError as exists:
        # RFC 8555 7.3.1: the key already has an account; the CA answered with its URL.
        net.account = messages.RegistrationResource(uri=exists.location, body=messages.Registration())
    return acme_client


def obtain() -> Path:
    """Order a certificate for `names()` now, answering HTTP-01 through our web listener; returns its path."""
    acme_client = _client()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # RSA: every mail client takes it
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    order = acme_client.new_order(crypto_util.make_csr(key_pem, names()))
    tokens = []
    try:
        for authorization in order.authorizations:
            if authorization.body.status == messages.STATUS_VALID:
                continue  # RFC 8555 7.1.4: the CA reuses a name's recent authorization; nothing to answer
            challenge = next((c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)), None)
            if challenge is None:
                raise errors.Error(f"{authorization.body.identifier.value}: the CA offers no http-01 challenge")
            response, validation = challenge.response_and_validation(acme_client.net.key)
            AcmeChallenge.objects.update_or_create(
                token=challenge.chall.encode("token"), defaults={"key_authorization": validation}
            )
            tokens.append(challenge.chall.encode("token"))
            acme_client.answer_challenge(challenge, response)
        deadline = datetime.datetime.now() + ORDER_TIMEOUT  # the library compares with naive local time
        order = acme_client.poll_and_finalize(order, deadline)
    finally:
        AcmeChallenge.objects.filter(token__in=tokens).delete()
    cert, key_path = certificate_files()
    # Key first: until the certificate follows, the pair does not load and listeners keep the old one.
    _write_private(key_path, key_pem)
    _write_private(cert, order.fullchain_pem.encode())
    log.info("ACME: certificate for %s obtained from %s", ", ".join(names()), settings.MAILSITE_ACME_DIRECTORY)
    return cert


def obtain_if_due(*, force: bool = False) -> bool:
    """Renew when due (or forced); True if a new certificate was written."""
    if not settings.MAILSITE_ACME:
        return False
    if not (force or is_due()):
        return False
    obtain()
    return True


def challenge_response(request: HttpRequest, token: str) -> HttpResponse:
    """GET /.well-known/acme-challenge/<token>: the key authorization (RFC 8555 8.3), over plain HTTP too."""
    found = AcmeChallenge.objects.filter(token=token).values_list("key_authorization", flat=True).first()
    if found is None:
        raise Http404("No such challenge")
    return HttpResponse(found, content_type="application/octet-stream")
