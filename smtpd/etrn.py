"""ETRN (RFC 1985): a client on an authorised network (MAILSITE_ETRN_NETWORKS; none by default) asks the MX to
send now the mail queued for a domain, usually the domain's primary host back on line after an outage.

The decisions are pure and here: the argument's syntax and the reply. The handler checks the client against the
networks (`mailsite.hardening.is_trusted`), makes the queued mail due at once and wakes the relay
(`mailboxes.actions.outbound.flush_domain`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 1985 5: "ETRN" SP [ "@" ] domain, or "#" queue-name; a domain as in RFC 5321 4.1.2 (ASCII labels).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+\.?")

SYNTAX = "501 5.5.4 Syntax: ETRN domain"  # RFC 1985 5: 501, syntax error in parameters
NOT_HERE = "502 5.5.1 ETRN is not offered on this listener"
IN_TRANSACTION = "503 5.5.1 ETRN is not allowed inside a mail transaction"
UNAVAILABLE = "458 4.3.0 Unable to queue messages for node {node}"  # RFC 1985 5: 458


@dataclass(frozen=True)
class Request:
    domain: str  # lower case, no trailing dot
    subdomains: bool  # "@domain": the domain's subdomains too


def parse(arg: str) -> Request | str:
    """The request in ETRN's argument, or the reply refusing it."""
    text = arg.strip()
    if text.startswith("#"):
        # RFC 1985 5: a queue name is site-specific; we keep one queue, named by recipient domain.
        return f"458 4.3.0 Unable to queue messages for node {text}: no such queue"
    subdomains = text.startswith("@")
    domain = text[1:] if subdomains else text
    if not _DOMAIN.fullmatch(domain) or len(domain) > 255:
        return SYNTAX
    return Request(domain.lower().rstrip("."), subdomains)


def refused(node: str) -> str:
    """RFC 1985 5: 459, node not allowed, for a client outside the ETRN networks."""
    return f"459 4.7.1 Node {node} not allowed: this client may not ask for queue runs"


def started(node: str, count: int) -> str:
    """RFC 1985 5: 251 when nothing waits, else 253 with the number of messages now due."""
    if count == 0:
        return f"251 2.0.0 OK, no messages waiting for node {node}"
    return f"253 2.0.0 OK, {count} pending messages for node {node} started"
