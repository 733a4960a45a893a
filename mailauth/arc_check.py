"""ARC (RFC 8617 5.2): the chain validation status of a message, with dkimpy and our key lookups."""

from __future__ import annotations

from dataclasses import dataclass

import dkim

from mailauth import dnsquery
from mailauth.dkim_check import KeyLookup, quiet_logger
from mailcore.fields import has_field

# RFC 8617 4.2.1: at most 50 ARC sets; dkimpy stops at that limit too.


@dataclass(frozen=True)
class ArcResult:
    result: str  # none, pass, fail, temperror (RFC 8617 4.4; RFC 8601 2.7 registry)
    reason: str = ""


def present(raw: bytes) -> bool:
    return has_field(raw, b"ARC-Seal")


def verify(raw: bytes, *, timeout: float) -> ArcResult:
    if not present(raw):
        return ArcResult("none")  # no ARC set: not worth a second parse of the message
    lookup = KeyLookup(timeout)
    try:
        status, _, reason = dkim.ARC(raw, logger=quiet_logger, timeout=timeout).verify(dnsfunc=lookup)
    except dnsquery.TemporaryDnsError as exc:
        return ArcResult("temperror", str(exc))
    except (dkim.DKIMException, dnsquery.OversizedAnswer, ValueError, IndexError, KeyError) as exc:
        return ArcResult("fail", f"{exc.__class__.__name__}: {exc}")
    if status == dkim.CV_Pass:
        return ArcResult("pass")
    if status == dkim.CV_None:
        return ArcResult("none")
    return ArcResult("fail", reason.decode() if isinstance(reason, bytes) else str(reason or ""))
