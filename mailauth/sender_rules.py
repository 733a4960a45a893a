"""Each account's allow and block lists (`SenderRule`): the store actions that write them, for the webmail's
settings and the admin alike.

An entry is an address (carol@example.net) or a domain (example.net, covering its subdomains), kept in the
form the MX compares with: lower case, the domain in A-labels (see `junk.listed`). One entry per sender and
account: adding a sender already listed moves it to the other list instead of keeping both.
"""

from __future__ import annotations

import re

from mailauth.models import SenderRule
from mailboxes.actions.locks import action, lock
from mailcore.idn import ascii_domain, valid_domain

# RFC 5321 4.1.2 dot-atom local parts (quoted local parts are rare enough to leave to the admin's domain entries).
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
MAX_RULES = 1000  # per account: the MX reads an account's whole list for every message to it


class InvalidSender(ValueError):
    """Not an address or a domain; the message says which and why, for the person who typed it."""


def normalise(text: str) -> str:
    """The stored form of an entry as typed: "Carol@Müller.example" -> "carol@xn--mller-kva.example"."""
    text = text.strip().rstrip(".")
    local, at, domain = text.rpartition("@")
    if at and not local:
        at = ""  # "@example.net" means the domain
    if not valid_domain(domain):
        raise InvalidSender(f"{text or 'An empty entry'} is not an address or a domain name.")
    if at and not _LOCAL_PART.fullmatch(local.lower()):
        raise InvalidSender(f"{text} is not an address this list can hold.")
    return f"{local.lower()}@{ascii_domain(domain)}" if at else ascii_domain(domain)


@action
def set_sender_rule(account_id: int, sender: str, *, allow: bool, replacing: SenderRule | None = None) -> SenderRule:
    """Allow or block `sender` (address or domain) for the account; raises InvalidSender. `replacing`: an
    entry this one takes the place of (the admin's change form)."""
    entry = normalise(sender)
    # An account's list changes one writer at a time, so MAX_RULES holds.
    lock(accounts=[account_id] + ([replacing.account_id] if replacing is not None else []))
    if replacing is not None:
        SenderRule.objects.filter(pk=replacing.pk).delete()
    found = SenderRule.objects.filter(account_id=account_id, sender=entry).first()
    if found is None:
        if SenderRule.objects.filter(account_id=account_id).count() >= MAX_RULES:
            raise InvalidSender(f"The lists hold at most {MAX_RULES} entries; remove some first.")
        return SenderRule.objects.create(account_id=account_id, sender=entry, allow=allow)
    if found.allow != allow:
        found.allow = allow
        found.save(update_fields=["allow"])
    return found


@action
def remove_sender_rule(account_id: int, rule_id: int) -> bool:
    """Remove one of the account's entries; False when it has no such entry (already removed)."""
    lock(accounts=[account_id])
    deleted, _ = SenderRule.objects.filter(account_id=account_id, pk=rule_id).delete()
    return bool(deleted)
