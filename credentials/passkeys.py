"""Passkeys (WebAuthn Level 3) as a second factor, with Duo's `webauthn` package.

A ceremony is two requests: the options (with a fresh challenge, which the caller keeps in the session and
hands back exactly once) and the browser's answer, verified against that challenge, the relying party id
(the host name the browser sees) and the origin. A signature counter that goes backwards means a cloned
authenticator (WebAuthn 6.1.1); such an assertion is refused. Authenticators that always report 0 are allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import webauthn
from django.db import transaction
from django.utils import timezone
from webauthn.helpers import exceptions
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from credentials.actions import CredentialError
from credentials.models import Passkey
from mailboxes.models import Account

RP_NAME = "Mailsite"


@dataclass(frozen=True)
class Ceremony:
    options_json: str  # for PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON
    challenge: bytes


def _descriptors(account_id: int) -> list[PublicKeyCredentialDescriptor]:
    ids = Passkey.objects.filter(account_id=account_id).values_list("credential_id", flat=True)
    return [PublicKeyCredentialDescriptor(id=bytes(credential_id)) for credential_id in ids]


def registration(account: Account, rp_id: str) -> Ceremony:
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=RP_NAME,
        user_name=account.address,
        user_id=account.pk.to_bytes(8, "big"),
        user_display_name=account.get_full_name(),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED
        ),
        exclude_credentials=_descriptors(account.pk),  # the same authenticator is not registered twice
    )
    return Ceremony(webauthn.options_to_json(options), options.challenge)


@transaction.atomic
def register(account: Account, name: str, credential: str, *, challenge: bytes, rp_id: str, origin: str) -> Passkey:
    name = name.strip()
    if not name or len(name) > 100:
        raise CredentialError("a passkey needs a name of 1 to 100 characters")
    try:
        verified = webauthn.verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin
        )
    except (exceptions.InvalidRegistrationResponse, exceptions.InvalidJSONStructure, ValueError) as exc:
        raise CredentialError(f"the passkey was not accepted: {exc}") from None
    if Passkey.objects.filter(credential_id=verified.credential_id).exists():
        raise CredentialError("this passkey is registered already")
    return Passkey.objects.create(
        account=account,
        name=name,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
    )


def authentication(account_id: int, rp_id: str) -> Ceremony:
    options = webauthn.generate_authentication_options(
        rp_id=rp_id, allow_credentials=_descriptors(account_id), user_verification=UserVerificationRequirement.PREFERRED
    )
    return Ceremony(webauthn.options_to_json(options), options.challenge)


@transaction.atomic
def authenticate(account_id: int, credential: str, *, challenge: bytes, rp_id: str, origin: str) -> bool:
    """Whether `credential` is a valid assertion by one of the account's passkeys for this challenge."""
    try:
        parsed = webauthn.helpers.parse_authentication_credential_json(credential)
    except (exceptions.InvalidJSONStructure, exceptions.InvalidAuthenticationResponse, ValueError):
        return False
    passkey = Passkey.objects.filter(account_id=account_id, credential_id=parsed.raw_id).first()
    if passkey is None:
        return False
    try:
        verified = webauthn.verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
        )
    except (exceptions.InvalidAuthenticationResponse, ValueError):
        return False
    # A conditional update: two uses racing with the same counter cannot both pass (counter 0 never moves).
    current = Passkey.objects.filter(pk=passkey.pk, sign_count=passkey.sign_count)
    return bool(current.update(sign_count=verified.new_sign_count, last_used=timezone.now()))
