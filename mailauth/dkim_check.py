"""DKIM (RFC 6376): every signature of a message verified with dkimpy, keys fetched through dnsquery.

Each signature gets its own result (RFC 6376 6.1: signatures are independent). Only the first
`max_signatures` are verified; RFC 6376 6.1 lets a verifier limit its work, and the rest are reported as
`policy` so the limit is visible in the Authentication-Results.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import dkim

from mailauth import dnsquery

# dkimpy logs every failure it handles at error level; we report them in our results instead.
quiet_logger = logging.getLogger("mailauth.dkimpy")
quiet_logger.addHandler(logging.NullHandler())
quiet_logger.propagate = False

_TAG = re.compile(rb"(?:^|;)\s*([a-z]+)\s*=\s*([^;]*)", re.IGNORECASE)


@dataclass(frozen=True)
class DkimResult:
    result: str  # pass, fail, neutral, temperror, permerror, policy (RFC 8601 2.7.1)
    domain: str  # d= ("" when the signature is too malformed to name one)
    selector: str
    reason: str = ""
    signature_b: str = ""  # the first characters of b=, to tell signatures apart (RFC 6008 header.b)


class KeyLookup:
    """dkimpy's dnsfunc: remembers whether the key was absent and turns temporary failures into an exception
    dkimpy does not swallow, so absent keys (permerror), bad signatures (fail) and DNS trouble (temperror) stay
    distinct."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.missing = False

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = [r for r in dnsquery.txt(text.rstrip("."), timeout=self.timeout) if not r.startswith(b"v=spf1")]
        if not records:
            self.missing = True
            return None
        return records[0]


def _tags(value: bytes) -> dict[bytes, bytes]:
    return {m.group(1).lower(): re.sub(rb"\s+", b"", m.group(2)) for m in _TAG.finditer(value)}


def verify(raw: bytes, *, max_signatures: int, timeout: float) -> list[DkimResult]:
    """One result per DKIM-Signature field, topmost first; [] for an unsigned message."""
    try:
        verifier = dkim.DKIM(raw, logger=quiet_logger, timeout=timeout, minkey=1024)
    except dkim.DKIMException as exc:
        return [DkimResult("permerror", "", "", f"unparsable message: {exc}")]
    fields = [value for name, value in verifier.headers if name.lower() == b"dkim-signature"]
    results: list[DkimResult] = []
    for index, value in enumerate(fields):
        tags = _tags(value)
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace")
        short_b = tags.get(b"b", b"")[:8].decode("ascii", "replace")
        if index >= max_signatures:
            results.append(DkimResult("policy", domain, selector, "too many signatures, not verified", short_b))
            continue
        results.append(_verify_one(verifier, index, domain, selector, short_b, timeout))
    return results


def _verify_one(
    verifier: dkim.DKIM, index: int, domain: str, selector: str, short_b: str, timeout: float
) -> DkimResult:
    lookup = KeyLookup(timeout)
    try:
        # The parsed message is shared; verify() sets all of its per-signature state (fields, key) anew.
        valid = verifier.verify(idx=index, dnsfunc=lookup)
    except dnsquery.TemporaryDnsError as exc:
        return DkimResult("temperror", domain, selector, str(exc), short_b)
    except dnsquery.OversizedAnswer as exc:
        return DkimResult("permerror", domain, selector, str(exc), short_b)
    except dkim.ValidationError as exc:
        if "body hash mismatch" in str(exc):
            return DkimResult("fail", domain, selector, "body hash did not verify", short_b)
        return DkimResult("permerror", domain, selector, f"bad signature: {exc}", short_b)
    except (dkim.DKIMException, ValueError, IndexError, KeyError) as exc:
        # Malformed tag lists, unknown algorithms, broken base64: the signature cannot be evaluated.
        return DkimResult("permerror", domain, selector, f"{exc.__class__.__name__}: {exc}", short_b)
    if valid:
        return DkimResult("pass", domain, selector, "", short_b)
    if lookup.missing:
        return DkimResult("permerror", domain, selector, "no key for signature", short_b)
    return DkimResult("fail", domain, selector, "signature did not verify", short_b)
