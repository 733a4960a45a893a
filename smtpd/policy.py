"""Accept/refuse decisions of the SMTP listeners, from plain values (no I/O, no ORM).

Every function answers with a complete reply line ("550 5.1.1 ...") or None for "no objection", so the
aiosmtpd hooks only gather values, call these and push what they return. Enhanced status codes follow
RFC 3463 and are carried by every reply except the greeting and the HELO/EHLO response (RFC 2034 3).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailcore.idn import ascii_domain

if TYPE_CHECKING:
    from mailauth.verify import Verdict

# RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF; aiosmtpd measures it without the
# CRLF. SIZE (RFC 1870 3) and SMTPUTF8 (RFC 6531 3.4) each extend the MAIL command line.
COMMAND_LINE_LIMIT = 510
MAIL_LINE_LIMIT = COMMAND_LINE_LIMIT + 26 + 10
TEXT_LINE_LIMIT = 1000  # RFC 5321 4.5.3.1.6: a line of DATA, including CRLF (aiosmtpd's own limit is 1001)
LOCAL_PART_LIMIT = 64  # RFC 5321 4.5.3.1.1
DOMAIN_LIMIT = 255  # RFC 5321 4.5.3.1.2
PATH_LIMIT = 256  # RFC 5321 4.5.3.1.3, the angle brackets included
MAX_RECIPIENTS = 100  # RFC 5321 4.5.3.1.8 requires at least 100; more get 452 (4.5.3.1.10)
# RFC 5321 6.3 detects loops by counting Received headers; 50 is the threshold Postfix uses (hopcount_limit).
MAX_RECEIVED = 50

# Recipient statuses as `mailboxes.actions.RecipientStatus` spells them (a StrEnum, so equal to these).
LOCAL = "local"
UNKNOWN = "unknown"
REMOTE = "remote"
OVER_QUOTA = "over_quota"

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please try again later"


@dataclass(frozen=True)
class ListenerRole:
    """What a listener is for: the MX accepts mail for local domains from anyone; submission needs AUTH."""

    name: str
    submission: bool


MX = ListenerRole("smtp", submission=False)
SUBMISSION = ListenerRole("submission", submission=True)
SMTPS = ListenerRole("smtps", submission=True)


# --- Reply codes ----------------------------------------------------------------------------------------------

# RFC 3463 defaults for replies that arrive without an enhanced code (aiosmtpd's built-in replies).
_DEFAULT_ENHANCED = {
    "2": "2.0.0",
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.5.3",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}

# aiosmtpd's own wording for some situations, replaced by ours (prefix match on the whole reply).
_REWRITES = (
    ("500 Command line too long", "500 5.5.2 Line too long"),
    ("500 Line too long", "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)"),
    ("552 Error: Too much mail data", "552 5.3.4 Message size exceeds fixed maximum message size"),
    ("552 Error: message size exceeds", "552 5.3.4 Message size exceeds fixed maximum message size"),
    # aiosmtpd closes the connection after five unknown commands; that is our error limit's 421.
    ("502 5.5.1 Too many unrecognized", "421 4.7.0 Too many errors, closing connection"),
    # HELP replies are 214 (RFC 5321 4.2.2); a HELP for an unknown topic stays 501.
    ("250 Syntax:", "214 2.0.0 Syntax:"),
    ("250 Supported commands:", "214 2.0.0 Supported commands:"),
    ("501 Supported commands:", "501 5.5.4 Unknown topic; supported commands:"),
)

_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}(?: |$)")


def enhance(reply: str) -> str:
    """The reply with an RFC 3463 enhanced status code (and our wording for some of aiosmtpd's replies)."""
    for prefix, replacement in _REWRITES:
        if reply.startswith(prefix):
            return replacement + reply[len(prefix) :] if prefix.endswith(":") else replacement
    code, sep, text = reply[:3], reply[3:4], reply[4:]
    if not code.isdigit() or code[0] not in "245" or sep not in (" ", "") or _ENHANCED.match(text):
        return reply  # intermediate replies (334, 354) carry no enhanced code; the rest already have one
    enhanced = _DEFAULT_ENHANCED.get(code) or _DEFAULT_ENHANCED.get(code[0]) or f"{code[0]}.0.0"
    return f"{code} {enhanced} {text}".rstrip()


def is_error(reply: str) -> bool:
    """Replies that count against a session's error limit (4xx and 5xx, except our own closing 421)."""
    return reply[:1] in ("4", "5") and not reply.startswith("421")


def too_many_errors(errors: int, limit: int) -> bool:
    return limit > 0 and errors >= limit


TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing connection"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
TIMEOUT = "421 4.4.2 Timeout exceeded, closing connection"


# --- Addresses ------------------------------------------------------------------------------------------------


def check_address(address: str, *, smtputf8: bool) -> str | None:
    """Refuse addresses that cannot be stored or relayed safely; None when the address is acceptable."""
    if any(ch in address for ch in "\x00\r\n"):
        # A NUL, CR or LF would end up inside a header (Return-Path, Received) or a relayed command.
        return "501 5.1.7 Invalid address: control characters are not allowed"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "501 5.1.3 Invalid address: user@domain expected"
    if len(local.encode("utf-8", "surrogateescape")) > LOCAL_PART_LIMIT:
        return f"501 5.1.3 Invalid address: local part longer than {LOCAL_PART_LIMIT} octets"
    if len(domain.encode("utf-8", "surrogateescape")) > DOMAIN_LIMIT:
        return f"501 5.1.3 Invalid address: domain longer than {DOMAIN_LIMIT} octets"
    if len(address.encode("utf-8", "surrogateescape")) + 2 > PATH_LIMIT:
        return f"501 5.1.3 Invalid address: path longer than {PATH_LIMIT} octets"
    if not smtputf8 and not address.isascii():
        return "553 5.6.7 Non-ASCII address requires SMTPUTF8"  # RFC 6531 3.5
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in address):
        return "501 5.1.7 Invalid address: control characters are not allowed"
    return None


def check_sender(address: str, *, smtputf8: bool) -> str | None:
    """MAIL FROM: the null reverse-path "<>" (bounces, RFC 5321 4.5.5) is always acceptable."""
    if address == "":
        return None
    return check_address(address, smtputf8=smtputf8)


def normalise_address(address: str) -> str:
    """The domain in its canonical A-label form, the local part as given (RFC 5321 2.4: only the receiving host
    interprets it)."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{ascii_domain(domain)}"


def sender_allowed(address: str, own: Collection[str], *, delimiter: str) -> bool:
    """May an authenticated user use `address`? Its own addresses (and their +tag forms) only."""
    folded = {item.casefold() for item in own}
    if address.casefold() in folded:
        return True
    local, _, domain = address.rpartition("@")
    if delimiter and delimiter in local:
        base = local.split(delimiter, 1)[0]
        return f"{base}@{domain}".casefold() in folded
    return False


SENDER_NOT_OWNED = "553 5.7.1 Sender address not owned by the authenticated user"
FROM_NOT_OWNED = "553 5.7.1 From: header address not owned by the authenticated user"


def ambiguous_from(reason: str) -> str:
    return f"553 5.7.1 From: header refused: {reason}"


def check_from_header(addresses: Iterable[str], own: Collection[str], *, delimiter: str) -> str | None:
    """Submission: every From: mailbox must be the user's own (RFC 6409 leaves this to site policy)."""
    found = list(addresses)
    if not found or not all(sender_allowed(a, own, delimiter=delimiter) for a in found):
        return FROM_NOT_OWNED
    return None


# --- Recipients -----------------------------------------------------------------------------------------------


def too_many_recipients(count: int) -> str | None:
    """`count` recipients accepted so far in this transaction."""
    if count >= MAX_RECIPIENTS:
        return "452 4.5.3 Too many recipients"
    return None


def remote_recipient(role: ListenerRole, *, authenticated: bool) -> str:
    """The one place deciding about recipients outside our domains.

    MX: never relay (RFC 5321 7.1). Submission (authenticated): the outbound queue takes them.
    """
    if role.submission and authenticated:
        return "250 2.1.5 Recipient ok, will be relayed"
    return "554 5.7.1 Relay access denied"


def rcpt_reply(status: str, role: ListenerRole, *, authenticated: bool) -> str:
    """The reply to RCPT TO for a recipient resolved to `status`."""
    if status == LOCAL:
        return "250 2.1.5 Recipient ok"
    if status == UNKNOWN:
        return "550 5.1.1 No such user here"
    if status == OVER_QUOTA:
        return "452 4.2.2 Mailbox full, try again later"
    return remote_recipient(role, authenticated=authenticated)


# --- Message data ---------------------------------------------------------------------------------------------

LOOP_DETECTED = f"554 5.4.6 Too many Received headers ({MAX_RECEIVED} or more): mail loop"
MIME_TOO_DEEP = "554 5.6.0 Message structure nested too deeply"
HEADER_TOO_LARGE = "552 5.3.4 Message header too large"
ALL_OVER_QUOTA = "452 4.2.2 Mailbox full, try again later"
NO_VALID_RECIPIENTS = "554 5.5.1 No valid recipients"


def loop_detected(received_count: int) -> bool:
    return received_count >= MAX_RECEIVED


def queued(queue_id: str) -> str:
    return f"250 2.0.0 Ok: queued as {queue_id}"


def delivery_reply(queue_id: str, results: dict[str, str], *, relayed: bool) -> str:
    """The single DATA reply for the per-recipient outcome of one delivery.

    SMTP (unlike LMTP) has one reply for all recipients: 250 once the message is stored for at least one of
    them, or, on submission (`relayed`), queued for the relay (REMOTE). On the MX a REMOTE result means the
    domain stopped being ours between RCPT and DATA: nothing was queued. When every recipient filled up
    between RCPT and DATA the sender is asked to retry.
    """
    statuses = set(results.values())
    if LOCAL in statuses or (relayed and REMOTE in statuses):
        return queued(queue_id)
    if OVER_QUOTA in statuses:
        return ALL_OVER_QUOTA
    return NO_VALID_RECIPIENTS


def refused_by_filter(reason: str) -> str:
    """The DATA reply when the recipients' Sieve scripts reject the message (RFC 5429 2.1.1: 550, 5.7.1): the
    script's reason on one line of printable ASCII (RFC 5321 4.2), shortened to fit a reply line."""
    text = "".join(c if " " <= c <= "~" else "?" for c in " ".join(reason.split()))[:200]
    return f"550 5.7.1 {text or 'Message refused by the recipient'}"


def with_protocol(*, extended: bool, tls: bool, authenticated: bool, smtputf8: bool) -> str:
    """The "with" keyword of the Received header (RFC 3848, RFC 6531 3.7.3)."""
    if not extended:
        return "SMTP"
    name = "UTF8SMTP" if smtputf8 else "ESMTP"
    return name + ("S" if tls else "") + ("A" if authenticated else "")


# --- Message authentication at the MX (mailauth) --------------------------------------------------------------
# RFC 7372 gives SPF its own enhanced codes; DMARC and forged senders use the generic 5.7.1.

AUTH_TEMPORARY = "451 4.7.0 Sender authentication could not be completed (DNS), try again later"
SPF_FAILED = "550 5.7.23 SPF validation failed"
DKIM_FAILED = "550 5.7.20 No passing DKIM signature found"


def dmarc_rejected(domain: str) -> str:
    return f"550 5.7.1 Message refused: the DMARC policy of {domain} asks to reject unauthenticated mail"


def forged_local_sender(domain: str) -> str:
    return f"550 5.7.1 Unauthenticated mail claiming to come from our domain {domain} is refused"


@dataclass(frozen=True)
class AuthDecision:
    """The MX's answer to a verified message: a refusal (`reply`), or delivery, into Junk when `junk`."""

    reply: str | None = None
    junk: bool = False


def _within(domain: str, parent: str) -> bool:
    return bool(parent) and (domain == parent or domain.endswith("." + parent))


def authentication_decision(
    verdict: Verdict, claimed_local: Collection[str], *, reject_spf_fail: bool, reject_dkim_fail: bool = False
) -> AuthDecision:
    """What the MX does with a message from the outside after verification.

    `claimed_local`: those of our own domains the message claims as its MAIL FROM or From: domain. Such a
    claim needs SPF to pass for that very domain or a valid DKIM signature of it (or of a parent domain),
    whatever DMARC record we publish. DMARC p=reject failures are refused, p=quarantine failures go to Junk;
    SPF alone refuses only with `reject_spf_fail`, DKIM alone (a signature that fails, none that passes) only
    with `reject_dkim_fail`. A temporary result refuses temporarily, and only where the
    final result could have been a refusal; otherwise the message is delivered and the header says temperror.
    """
    for domain in claimed_local:
        if verdict.spf.result == "pass" and verdict.spf.domain == domain:
            continue
        if any(d.result == "pass" and _within(domain, d.domain) for d in verdict.dkim):
            continue
        if (verdict.spf.result == "temperror" and verdict.spf.domain == domain) or any(
            d.result == "temperror" and _within(domain, d.domain) for d in verdict.dkim
        ):
            return AuthDecision(AUTH_TEMPORARY)
        return AuthDecision(forged_local_sender(domain))
    junk = False
    for result in verdict.dmarc:
        if result.result == "fail" and result.disposition == "reject":
            return AuthDecision(dmarc_rejected(result.domain))
        if result.result == "temperror" and result.policy == "reject":
            return AuthDecision(AUTH_TEMPORARY)
        junk = junk or (result.result == "fail" and result.disposition == "quarantine")
    if reject_spf_fail and verdict.spf.result == "fail":
        return AuthDecision(SPF_FAILED)
    if reject_spf_fail and verdict.spf.result == "temperror":
        return AuthDecision(AUTH_TEMPORARY)
    results = {d.result for d in verdict.dkim}
    if reject_dkim_fail and "pass" not in results:
        if "fail" in results:
            return AuthDecision(DKIM_FAILED)
        if "temperror" in results:
            return AuthDecision(AUTH_TEMPORARY)
    return AuthDecision(junk=junk)


SPAM_REJECTED = "550 5.7.1 Message refused as spam"


def spam_decision(score: float | None, *, junk_score: float, reject_score: float) -> AuthDecision:
    """The junk engine's score against our thresholds; an unscored message (None) is delivered as it is."""
    if score is None:
        return AuthDecision()
    if score >= reject_score:
        return AuthDecision(SPAM_REJECTED)
    return AuthDecision(junk=score >= junk_score)


def dnsbl_listed(ip: str, zone: str) -> str:
    """RFC 5782 6: a client on a DNS blocklist, greeted with 554 (RFC 5321 3.1), as Postfix's postscreen does."""
    return f"554 5.7.1 Service unavailable; client [{ip}] is listed by {zone}"


# RFC 5321 3.1: after a 554 greeting every command but QUIT gets 503.
REFUSED_AT_GREETING = "503 5.5.1 Bad sequence of commands: this server refused the connection; send QUIT"


# --- Connections ----------------------------------------------------------------------------------------------


class ConnectionCounter:
    """Open connections per client IP within one process; `acquire` refuses beyond the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def acquire(self, ip: str) -> bool:
        count = self._open.get(ip, 0)
        if self.limit > 0 and count >= self.limit:
            return False
        self._open[ip] = count + 1
        return True

    async def admit(self, ip: str) -> bool:
        """`acquire` as the listener awaits it, as it awaits the count kept in Redis (`limits`)."""
        return self.acquire(ip)

    def release(self, ip: str) -> None:
        count = self._open.get(ip, 0) - 1
        if count > 0:
            self._open[ip] = count
        else:
            self._open.pop(ip, None)
