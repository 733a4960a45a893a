"""Time-based one-time passwords (RFC 6238) with pyotp: secrets, the enrolment QR code, and code matching.

Pure functions: which time step a typed code belongs to is decided here, and the store's conditional update
(`actions.accept_second_factor`) makes sure a step is accepted at most once.
"""

from __future__ import annotations

import datetime
import hmac

import pyotp

STEP_SECONDS = 30  # RFC 6238 4.1 X, the value every authenticator app uses
DIGITS = 6
# RFC 6238 5.2: allow one step either side for clock drift and the time it takes to type the code.
DRIFT_STEPS = 1


def new_secret() -> str:
    """160 random bits in base32, the key length RFC 4226 4 recommends."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, address: str, issuer: str) -> str:
    """The otpauth:// URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=address, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code as an inline <svg> element: no image request, nothing for the CSP to allow."""
    import segno  # only the setup page draws a QR code

    return segno.make(uri, error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", title="QR code for your authenticator app"
    )


def matching_step(secret: str, code: str, now: datetime.datetime, *, after: int) -> int | None:
    """The time step within the drift window whose code `code` is, if that step is later than `after`."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = totp.timecode(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > after and hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def looks_like_code(typed: str) -> bool:
    """A TOTP code is digits only; anything else typed in the same field is taken as a recovery code."""
    return "".join(typed.split()).isdigit()
