"""DKIM (RFC 6376): every signature of a message verified by dkim_verify, keys fetched through dnsquery.

Each signature gets its own result (RFC 6376 6.1: signatures are independent). Only the first
`max_signatures` are verified; RFC 6376 6.1 lets a verifier limit its work, and the rest are reported as
`policy` so the limit is visible in the Authentication-Results.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from mailauth import dkim_verify, dnsquery

# dkimpy (ARC) logs every failure it handles at error level; we report them in our results instead.
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
    """The first DKIM key record at a name, through the answer cache (None when there is none). Also dkimpy's
    dnsfunc for ARC, to which it raises temporary failures as an exception dkimpy does not swallow."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = [r for r in dnsquery.txt(text.rstrip("."), timeout=self.timeout) if not r.startswith(b"v=spf1")]
        return records[0] if records else None


def _tags(value: bytes) -> dict[bytes, bytes]:
    return {m.group(1).lower(): re.sub(rb"\s+", b"", m.group(2)) for m in _TAG.finditer(value)}


def verify(raw: bytes, *, max_signatures: int, timeout: float) -> list[DkimResult]:
    """One result per DKIM-Signature field, topmost first; [] for an unsigned message."""
    try:
        message = dkim_verify.Message(raw)
    except dkim_verify.Unverifiable as exc:
        return [DkimResult("permerror", "", "", f"unparsable message: {exc}")]
    results: list[DkimResult] = []
    lookup = KeyLookup(timeout)
    for index, field in enumerate(message.signatures()):
        # Named for the report by a lenient reading, so that even a malformed signature says whose it claims to be.
        tags = _tags(field[1])
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace")
        short_b = tags.get(b"b", b"")[:8].decode("ascii", "replace")
        if index >= max_signatures:
            results.append(DkimResult("policy", domain, selector, "too many signatures, not verified", short_b))
            continue
        try:
            outcome = dkim_verify.verify(message, field, lookup)
        except dnsquery.TemporaryDnsError as exc:
            outcome = dkim_verify.Outcome("temperror", str(exc))
        except dnsquery.OversizedAnswer as exc:
            outcome = dkim_verify.Outcome("permerror", str(exc))
        results.append(DkimResult(outcome.result, domain, selector, outcome.reason, short_b))
    return results
