"""SPF (RFC 7208) for the HELO and MAIL FROM identities, with pyspf evaluating records over our resolver.

pyspf enforces the limits of RFC 7208 4.6.4 itself: more than 10 mechanisms or modifiers that query DNS, more
than 2 void lookups, or more than 10 MX/PTR names give permerror, so include/redirect loops end there too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.rdatatype
import spf

from mailauth import dnsquery
from mailcore.idn import ascii_domain

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")


@dataclass(frozen=True)
class SpfResult:
    result: str  # one of RESULTS
    domain: str  # the domain whose record was evaluated ("" when there was none to check)
    identity: str  # "mailfrom" or "helo" (RFC 8601 2.7.2: smtp.mailfrom / smtp.helo)
    reason: str = ""


def _lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20) -> list:
    """pyspf's DNSLookup interface ([((name, type), value)]) over dnsquery; TempError for temporary failures."""
    try:
        if qtype in ("TXT", "SPF"):
            # SPF records are whole TXT records; pyspf joins the strings again (RFC 7208 3.3).
            return [((name, qtype), [value]) for value in dnsquery.txt(name, timeout=timeout)]
        records = dnsquery.lookup(name, qtype, timeout=timeout)
    except dnsquery.TemporaryDnsError as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    except dnsquery.OversizedAnswer as exc:
        raise spf.PermError(str(exc)) from exc
    found: list = []
    for rdata in records:
        if rdata.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found.append(((name, qtype), rdata.address))
        elif rdata.rdtype == dns.rdatatype.MX:
            found.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif rdata.rdtype == dns.rdatatype.PTR:
            found.append(((name, qtype), rdata.target.to_text(True)))
    return found


# pyspf resolves through its module-level DNSLookup; ours uses the configured resolver, its timeout and cache.
spf.DNSLookup = _lookup


def _is_domain(name: str) -> bool:
    """HELO names that can have an SPF record: a dotted name, not an address literal (RFC 7208 2.3)."""
    if not name or name.startswith("[") or "." not in name.strip("."):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False


def _check(ip: str, sender: str, helo: str, identity: str, domain: str, total_time: float) -> SpfResult:
    # The same envelope from the same address (bulk mail, or HELO and null-sender checks of one message) is
    # evaluated once a minute: the result depends on nothing else, and its DNS answers are cached anyway.
    return dnsquery.remembered(
        ("spf", ip, sender, helo, identity),
        lambda: _evaluate(ip, sender, helo, identity, domain, total_time),
        keep=lambda result: result.result != "temperror",
    )


def _evaluate(ip: str, sender: str, helo: str, identity: str, domain: str, total_time: float) -> SpfResult:
    try:
        query = spf.query(i=ip, s=sender, h=helo, timeout=total_time, querytime=total_time)
        result, _, explanation = query.check()
    except (spf.TempError, dnsquery.TemporaryDnsError) as exc:
        return SpfResult("temperror", domain, identity, str(exc))
    except (spf.PermError, ValueError) as exc:
        return SpfResult("permerror", domain, identity, str(exc))
    if result not in RESULTS:  # pyspf's "ambiguous" only exists in its strict>1 mode
        return SpfResult("permerror", domain, identity, str(result))
    return SpfResult(result, domain, identity, explanation if result != "pass" else "")


def check_helo(ip: str, helo: str, *, total_time: float) -> SpfResult:
    """RFC 7208 2.3: the HELO identity, checked as postmaster@<helo>."""
    if not _is_domain(helo):
        return SpfResult("none", "", "helo", "HELO is not a domain name")
    helo = ascii_domain(helo)
    return _check(ip, f"postmaster@{helo}", helo, "helo", helo, total_time)


def check_mail_from(ip: str, sender: str, helo: str, *, total_time: float) -> SpfResult:
    """RFC 7208 2.4: MAIL FROM; the null reverse-path uses the HELO identity instead (postmaster@<helo>)."""
    if not sender:
        if not _is_domain(helo):
            return SpfResult("none", "", "mailfrom", "null sender and HELO is not a domain name")
        helo = ascii_domain(helo)
        return _check(ip, f"postmaster@{helo}", helo, "mailfrom", helo, total_time)
    local, _, domain = sender.rpartition("@")
    domain = ascii_domain(domain)
    if not domain.isascii():
        return SpfResult("none", domain, "mailfrom", "the MAIL FROM domain is not a valid domain name")
    # An SMTPUTF8 local part stays as it is: only macros (%{l}) would use it, and DNS names cannot carry it.
    return _check(
        ip, f"{local}@{domain}", ascii_domain(helo) if _is_domain(helo) else helo, "mailfrom", domain, total_time
    )
