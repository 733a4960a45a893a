"""Which domains a received message claims to come from (pure).

DMARC is evaluated for the author domains our header parser reads from From: (`mailcore.headers`), the
reading the webmail shows. The check for forged local senders is stricter: it takes every domain written
after an "@" anywhere in any From: field as claimed, so neither a second From: field, a display name that
looks like an address, nor a parser differential can carry one of our domains past it unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailcore.fields import header_end
from mailcore.headers import header_str, parse_address_list
from mailcore.idn import ascii_domain

_FIELD = re.compile(rb"(?im)^from[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)")
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"  # letters and digits of any script: IDNs are claims too
_AT_DOMAIN = re.compile(rf"@\s*({_LABEL}(?:\.{_LABEL})+)")


@dataclass(frozen=True)
class Claims:
    author_domains: tuple[str, ...]  # From: mailboxes' domains, as our parser reads them (for DMARC)
    author_addresses: tuple[str, ...]  # the From: mailboxes themselves, lower-cased (for allow and block lists)
    mentioned_domains: tuple[str, ...]  # every domain after an "@" in any From: field (for forged local senders)


def _domain(text: str) -> str:
    # A-labels, as our domains are stored and DNS, SPF and DKIM name them (an IDN From: must align too).
    return ascii_domain(text)


def read(raw: bytes) -> Claims:
    values = [re.sub(rb"\r\n([ \t])", rb"\1", m.group(1)) for m in _FIELD.finditer(raw, 0, header_end(raw))]
    authors: dict[str, None] = {}
    addresses: dict[str, None] = {}
    mentioned: dict[str, None] = {}
    for value in values:
        text = header_str(value.strip())
        for kind, _, local, domain in parse_address_list(text):
            if kind == "mailbox" and domain:
                authors[_domain(domain)] = None
                addresses[f"{local}@{_domain(domain)}".lower()] = None
        for match in _AT_DOMAIN.finditer(text):
            mentioned[_domain(match.group(1))] = None
    for domain in authors:
        mentioned[domain] = None
    return Claims(tuple(authors), tuple(addresses), tuple(mentioned))


def with_sender(sender: str, claims: Claims) -> list[str]:
    """The domains whose authority a message claims: its MAIL FROM domain and every domain of its From:."""
    found = [_domain(sender.rpartition("@")[2])] if sender else []
    found.extend(claims.mentioned_domains)
    return list(dict.fromkeys(d for d in found if d))


def sender_addresses(sender: str, claims: Claims) -> list[str]:
    """The addresses a message is from, for allow and block lists: MAIL FROM and the From: mailboxes."""
    found = [sender.lower()] if sender else []
    found.extend(claims.author_addresses)
    return list(dict.fromkeys(found))
