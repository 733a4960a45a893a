"""Generated secrets (app passwords, recovery codes): how they look, how they are normalised and stored."""

from __future__ import annotations

import hashlib
import secrets

# Lower-case letters and digits without the look-alikes i, l, o, 0 and 1: easy to type on a phone.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
APP_PASSWORD_LENGTH = 20  # 20 * log2(31) = 99 bits
RECOVERY_CODE_LENGTH = 10  # 49 bits, single use, throttled like passwords
RECOVERY_CODES = 10


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _grouped(text: str, size: int) -> str:
    return "-".join(text[i : i + size] for i in range(0, len(text), size))


def new_app_password() -> str:
    """Shown once, as five groups of four: "abcd-efgh-jkmn-pqrs-tuvw"."""
    return _grouped(_random(APP_PASSWORD_LENGTH), 4)


def new_recovery_code() -> str:
    return _grouped(_random(RECOVERY_CODE_LENGTH), 5)


def normalise(typed: str) -> str:
    """What the user typed, without the group separators or spaces a client or a person may add or drop."""
    return "".join(ch for ch in typed.lower() if ch not in "- \t")


def looks_generated(typed: str, length: int) -> bool:
    """Whether a typed secret could be one of ours, so other passwords need no lookup."""
    text = normalise(typed)
    return len(text) == length and all(ch in ALPHABET for ch in text)


def digest(typed: str) -> str:
    return hashlib.sha256(normalise(typed).encode()).hexdigest()
