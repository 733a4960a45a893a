"""Verification of one received message: SPF, DKIM, DMARC from their results, then ARC where it can matter.

ARC (RFC 8617) only vouches for authentication results a forwarder saw; a message that passes DMARC here needs
no such voucher, so an ARC chain it carries is not validated and its Authentication-Results has no arc= result
(RFC 8601 2.7: a method not evaluated is not reported). Without ARC sets the result is arc=none, as always.

`verify_message` is blocking (DNS); `verify_off_loop`, what the MX awaits, runs it on the event loop when the
DNS answer cache holds every answer it needs, else in a worker thread. Every
step gets the time left of one overall budget (MAILSITE_AUTH_TIMEOUT): a step that finds none left, or whose
lookups time out, ends in temperror, so a message always leaves verification with a verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings

from mailauth import arc_check, dkim_check, dmarc, dnsquery, results, spf_check
from mailauth.arc_check import ArcResult
from mailauth.dkim_check import DkimResult
from mailauth.dmarc import DmarcResult
from mailauth.spf_check import SpfResult

log = logging.getLogger("mailauth")


@dataclass(frozen=True)
class Envelope:
    ip: str
    helo: str
    sender: str  # "" for the null reverse-path
    author_domains: tuple[str, ...]  # the RFC 5322.From domains, from the one parse the MX made


@dataclass(frozen=True)
class Verdict:
    spf_helo: SpfResult
    spf: SpfResult
    dkim: tuple[DkimResult, ...] = ()
    arc: ArcResult | None = field(default_factory=lambda: ArcResult("none"))  # None: not evaluated
    dmarc: tuple[DmarcResult, ...] = ()

    def resinfos(self) -> list[str]:
        """The method results for Authentication-Results, in the order of RFC 8601's examples."""
        items = []
        for check, ptype in ((self.spf, "smtp.mailfrom"), (self.spf_helo, "smtp.helo")):
            if check.domain or check.result != "none":
                items.append(results.method_result("spf", check.result, [(ptype, check.domain)], comment=check.reason))
        if not self.dkim:
            items.append(results.method_result("dkim", "none"))
        for d in self.dkim:
            props = [("header.d", d.domain), ("header.s", d.selector), ("header.b", d.signature_b)]
            items.append(results.method_result("dkim", d.result, props, comment=d.reason))
        if self.arc is not None:
            items.append(results.method_result("arc", self.arc.result, comment=self.arc.reason))
        for m in self.dmarc:
            comment = "" if m.result == "none" else f"p={m.policy} dis={m.disposition}"
            comment += f"; {m.reason}" if m.reason and comment else m.reason
            items.append(results.method_result("dmarc", m.result, [("header.from", m.domain)], comment=comment))
        return items

    def header_field(self, authserv_id: str) -> bytes:
        return results.field(authserv_id, self.resinfos())


def timed_out(envelope: Envelope, reason: str) -> Verdict:
    """The verdict when verification could not finish: every check temporary, so no policy rejects for good."""
    sender_domain = envelope.sender.rpartition("@")[2].lower()
    return Verdict(
        spf_helo=SpfResult("temperror", envelope.helo.lower(), "helo", reason),
        spf=SpfResult("temperror", sender_domain, "mailfrom", reason),
        arc=ArcResult("temperror", reason),
        dmarc=tuple(DmarcResult(d, "temperror", reason=reason) for d in envelope.author_domains),
    )


def verify_message(raw: bytes, envelope: Envelope, *, total_time: float, max_signatures: int) -> Verdict:
    deadline = time.monotonic() + total_time
    per_lookup = float(settings.MAILSITE_DNS_TIMEOUT)

    def left() -> float:
        return max(min(per_lookup, deadline - time.monotonic()), 0.001)

    failed = timed_out(envelope, "internal error")
    spf_helo = _guarded(lambda: spf_check.check_helo(envelope.ip, envelope.helo, total_time=left()), failed.spf_helo)
    spf = _guarded(
        lambda: spf_check.check_mail_from(envelope.ip, envelope.sender, envelope.helo, total_time=left()), failed.spf
    )
    broken: tuple[DkimResult, ...] = (DkimResult("temperror", "", "", "internal error"),)
    signatures = _guarded(lambda: tuple(dkim_check.verify(raw, max_signatures=max_signatures, timeout=left())), broken)
    verdicts = _guarded(
        lambda: tuple(
            dmarc.evaluate(domain, dmarc.discover(domain, timeout=left()), spf, signatures)
            for domain in dict.fromkeys(envelope.author_domains)
        ),
        failed.dmarc,
    )
    arc = None
    if not (verdicts and all(v.result == "pass" for v in verdicts) and arc_check.present(raw)):
        arc = _guarded(lambda: arc_check.verify(raw, timeout=left()), failed.arc)
    return Verdict(spf_helo=spf_helo, spf=spf, dkim=signatures, arc=arc, dmarc=verdicts)


T = TypeVar("T")


def _guarded(check: Callable[[], T], fallback: T) -> T:
    """A check that fails on input its library cannot handle gives a temporary result, never a refusal for
    our own failure, and is logged so it gets fixed."""
    try:
        return check()
    except Exception:
        log.exception("verification step failed")
        return fallback


_pool: ThreadPoolExecutor | None = None


def prepare() -> None:
    """Load what the first verification would otherwise load while a client waits: the public suffix list
    (a fifth of a second), the thread pool."""
    dmarc.organisational_domain("example.com")
    executor()


def executor() -> ThreadPoolExecutor:
    """The threads that do mailauth's blocking or CPU-heavy work off the event loop."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.MAILSITE_AUTH_THREADS, thread_name_prefix="mailauth")
    return _pool


# Messages up to this size are verified on the event loop when every DNS answer they need is cached: the work
# (about 0.15 ms for a signed message) then costs less than handing it to a thread. Larger ones always go to the
# thread, so that canonicalising a big body never holds up the other sessions.
INLINE_MAX_BYTES = 128 * 1024


async def verify_off_loop(raw: bytes, envelope: Envelope) -> Verdict:
    """`verify_message` on the loop from cached answers alone when it can, else in a worker thread, never longer
    than MAILSITE_AUTH_TIMEOUT (plus a second's grace)."""
    total = float(settings.MAILSITE_AUTH_TIMEOUT)
    if len(raw) <= INLINE_MAX_BYTES:
        with dnsquery.cached_only() as misses:
            verdict = verify_message(raw, envelope, total_time=total, max_signatures=_max_signatures())
        if not misses:
            return verdict
    work = asyncio.get_running_loop().run_in_executor(
        executor(), lambda: verify_message(raw, envelope, total_time=total, max_signatures=_max_signatures())
    )
    try:
        return await asyncio.wait_for(work, total + 1.0)
    except TimeoutError:
        log.warning("verification timed out after %.1fs client=%s", total, envelope.ip)
        return timed_out(envelope, "verification timed out")


def _max_signatures() -> int:
    return int(settings.MAILSITE_DKIM_MAX_SIGNATURES)
