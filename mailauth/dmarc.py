"""DMARC (RFC 7489): record discovery, identifier alignment and the policy to apply.

`parse_record`, `aligned` and `evaluate` are pure; `discover` asks DNS. The organisational domain comes from
the public suffix list shipped by the `publicsuffixlist` package (RFC 7489 3.2), ICANN section only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from mailauth import dnsquery
from mailauth.dkim_check import DkimResult
from mailauth.spf_check import SpfResult

POLICIES = ("none", "quarantine", "reject")


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(only_icann=True)


@lru_cache(maxsize=4096)  # the same few sender domains, several times per message
def organisational_domain(domain: str) -> str:
    """RFC 7489 3.2: the public suffix plus one label; a public suffix itself is its own."""
    domain = domain.lower().rstrip(".")
    return _suffixes().privatesuffix(domain) or domain


@dataclass(frozen=True)
class DmarcRecord:
    policy: str
    subdomain_policy: str
    dkim_strict: bool
    spf_strict: bool
    percent: int


def parse_record(text: bytes) -> DmarcRecord | None:
    """A DMARC record (RFC 7489 6.3), or None when `text` is not one (the v tag must come first)."""
    tags: dict[str, str] = {}
    for part in text.decode("ascii", "replace").split(";"):
        name, eq, value = part.partition("=")
        if eq:
            tags.setdefault(name.strip().lower(), value.strip())
        elif part.strip():
            return None
    if not text.lstrip().lower().startswith(b"v") or tags.get("v") != "DMARC1":
        return None
    # RFC 7489 6.6.3 step 6: an invalid or missing p is treated as "none" (the record still counts).
    policy = tags.get("p", "").lower()
    policy = policy if policy in POLICIES else "none"
    subdomain = tags.get("sp", "").lower()
    subdomain = subdomain if subdomain in POLICIES else policy
    try:
        percent = min(max(int(tags.get("pct", "100")), 0), 100)
    except ValueError:
        percent = 100
    return DmarcRecord(
        policy=policy,
        subdomain_policy=subdomain,
        dkim_strict=tags.get("adkim", "r").lower() == "s",
        spf_strict=tags.get("aspf", "r").lower() == "s",
        percent=percent,
    )


@dataclass(frozen=True)
class Discovery:
    """The record that governs a From domain, and where it was found; `temporary` when DNS failed."""

    record: DmarcRecord | None
    at_organisational_domain: bool = False
    temporary: str = ""


def _records_at(domain: str, timeout: float) -> list[DmarcRecord]:
    found = []
    try:
        texts = dnsquery.txt(f"_dmarc.{domain}", timeout=timeout)
    except dnsquery.OversizedAnswer:
        return []
    for text in texts:
        record = parse_record(text)
        if record is not None:
            found.append(record)
    return found


def discover(from_domain: str, *, timeout: float) -> Discovery:
    """RFC 7489 6.6.3: _dmarc.<From domain>, else _dmarc.<organisational domain>; two records mean none."""
    try:
        records = _records_at(from_domain, timeout)
        if records:
            return Discovery(records[0] if len(records) == 1 else None)
        organisational = organisational_domain(from_domain)
        if organisational == from_domain:
            return Discovery(None)
        records = _records_at(organisational, timeout)
    except dnsquery.TemporaryDnsError as exc:
        return Discovery(None, temporary=str(exc))
    return Discovery(records[0] if len(records) == 1 else None, at_organisational_domain=True)


def aligned(identifier: str, from_domain: str, *, strict: bool) -> bool:
    """RFC 7489 3.1: strict needs the same name; relaxed the same organisational domain."""
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not identifier:
        return False
    if strict:
        return identifier == from_domain
    return organisational_domain(identifier) == organisational_domain(from_domain)


@dataclass(frozen=True)
class DmarcResult:
    domain: str  # the RFC 5322.From domain
    result: str  # pass, fail, none, temperror (RFC 8601 2.7.4; RFC 7489 11.2)
    policy: str = "none"  # the record's requested policy for this domain
    disposition: str = "none"  # what to do after pct sampling (RFC 7489 6.6.4)
    reason: str = ""


_WEAKER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


def evaluate(
    from_domain: str,
    discovery: Discovery,
    spf: SpfResult,
    dkim: Sequence[DkimResult],
    *,
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    """The DMARC result for one author domain from the SPF (MAIL FROM) and DKIM results already obtained."""
    if discovery.temporary:
        return DmarcResult(from_domain, "temperror", reason=discovery.temporary)
    record = discovery.record
    if record is None:
        return DmarcResult(from_domain, "none")
    # RFC 7489 6.3: sp applies to subdomains when the record was found at the organisational domain.
    policy = record.subdomain_policy if discovery.at_organisational_domain else record.policy
    spf_aligned = spf.result == "pass" and aligned(spf.domain, from_domain, strict=record.spf_strict)
    dkim_aligned = any(d.result == "pass" and aligned(d.domain, from_domain, strict=record.dkim_strict) for d in dkim)
    if spf_aligned or dkim_aligned:
        return DmarcResult(from_domain, "pass", policy, "none")
    # A failure could be a pass a little later when an aligned identifier's check failed temporarily.
    temporary = (spf.result == "temperror" and aligned(spf.domain, from_domain, strict=record.spf_strict)) or any(
        d.result == "temperror" and aligned(d.domain, from_domain, strict=record.dkim_strict) for d in dkim
    )
    if temporary:
        return DmarcResult(from_domain, "temperror", policy, "none", "an aligned check failed temporarily")
    disposition = policy
    # RFC 7489 6.6.4: outside the sampled percentage the next weaker policy applies.
    if policy != "none" and record.percent < 100 and sample() * 100 >= record.percent:
        disposition = _WEAKER[policy]
    return DmarcResult(from_domain, "fail", policy, disposition, "no aligned SPF or DKIM pass")
