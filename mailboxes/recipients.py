"""What a recipient address means here: aliases, user+tag and catch-all expanded (reads only).

Also `DeliveryReport`, what became of each envelope recipient of one delivery."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from mailboxes.models import Account, Alias, Domain, split_address
from mailcore.idn import ascii_domain
from sieve.models import BeforeScript, SieveScript


class RecipientStatus(enum.StrEnum):
    LOCAL = "local"  # resolves to local accounts and/or external forwarding addresses
    UNKNOWN = "unknown"  # a local domain, but no such account or alias
    REMOTE = "remote"  # not one of our domains
    OVER_QUOTA = "over_quota"  # every local account it resolves to is full


@dataclass(frozen=True)
class _Mailholder:
    """What resolution needs of an account: its id and room, and whether a Sieve script (its own or an admin's
    before-script) runs at its deliveries, so a delivery to accounts without one need not ask again."""

    pk: int
    quota_bytes: int
    used_bytes: int
    quota_messages: int
    used_messages: int
    filtered: bool


@dataclass(frozen=True)
class Expansion:
    """What an address expands to, before any size is known: `_expand`'s answer and what it collected."""

    found: bool | None
    accounts: dict[int, _Mailholder]
    external: tuple[str, ...]

    @property
    def filtered(self) -> set[int]:
        """The accounts reached that have a Sieve script to run."""
        return {pk for pk, account in self.accounts.items() if account.filtered}


@dataclass(frozen=True)
class Resolution:
    address: str
    status: RecipientStatus
    account_ids: tuple[int, ...] = ()  # the local accounts it reaches that have room
    external: tuple[str, ...] = ()
    # What the address expanded to, so a delivery soon after (SMTP's DATA after RCPT) need not look it up again.
    expansion: Expansion | None = field(default=None, repr=False, compare=False)


_MAX_ALIAS_DEPTH = 10


# One round trip per address: the domain's aliases that could apply, its accounts that could apply (with whether
# a Sieve script runs for them), and whether the domain is ours at all. Plain SQL: this runs for every RCPT, and
# at delivery for addresses RCPT did not look up (webmail, submission, the savepoint retry).
_RESOLVE_SQL = f"""
    SELECT 'alias', a.local_part, a.destinations, 0, 0, 0, 0, 0, FALSE
    FROM {Alias._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id
    WHERE d.name = %(domain)s AND d.active AND a.active AND a.local_part IN (%(local)s, %(base)s, '')
    UNION ALL
    SELECT 'account', c.local_part, '', c.id, c.quota_bytes, c.used_bytes, c.quota_messages, c.used_messages,
        EXISTS (SELECT 1 FROM {SieveScript._meta.db_table} s WHERE s.account_id = c.id AND s.active)
        OR EXISTS (SELECT 1 FROM {BeforeScript._meta.db_table} b
                   WHERE b.enabled AND (b.domain_id IS NULL OR b.domain_id = c.domain_id))
    FROM {Account._meta.db_table} c JOIN {Domain._meta.db_table} d ON d.id = c.domain_id
    WHERE d.name = %(domain)s AND d.active AND c.is_active AND c.local_part IN (%(local)s, %(base)s)
    UNION ALL
    SELECT 'domain', '', '', 0, 0, 0, 0, 0, FALSE FROM {Domain._meta.db_table} d WHERE d.name = %(domain)s AND d.active
"""


def _expand(address: str, depth: int, accounts: dict[int, _Mailholder], external: list[str]) -> bool | None:
    """Add what `address` resolves to. True: found; False: local domain, nothing found; None: not local.

    Precedence, as most mail servers do it: an exact alias, then an account, then the same two for the
    address without its +tag, then the domain's catch-all.
    """
    local, domain_name = split_address(address)
    if depth > _MAX_ALIAS_DEPTH:
        return False
    delimiter = settings.MAILSITE_RECIPIENT_DELIMITER
    base = local.split(delimiter, 1)[0] if delimiter and delimiter in local else local
    with connection.cursor() as cursor:
        cursor.execute(_RESOLVE_SQL, {"domain": domain_name, "local": local, "base": base})
        rows = cursor.fetchall()
    aliases = {part: destinations for kind, part, destinations, *_ in rows if kind == "alias"}
    candidates = {
        row[1]: _Mailholder(row[3], row[4], row[5], row[6], row[7], bool(row[8])) for row in rows if row[0] == "account"
    }
    is_local = any(row[0] == "domain" for row in rows)
    destinations = aliases.get(local)
    if destinations is None:
        account = candidates.get(local)
        if account is None:
            destinations = aliases.get(base)
            account = None if destinations is not None else candidates.get(base)
        if account is not None:
            accounts[account.pk] = account
            return True
    if destinations is None:
        destinations = aliases.get("")
    if destinations is None:
        if is_local:
            return False
        if depth == 0:
            return None
        if address not in external:
            external.append(address)
        return True
    found = False
    for destination in Alias(destinations=destinations).destination_list:
        found = bool(_expand(destination, depth + 1, accounts, external)) or found
    return found


def expansion(address: str) -> Expansion:
    accounts: dict[int, _Mailholder] = {}
    external: list[str] = []
    found = _expand(address, 0, accounts, external)
    return Expansion(found, accounts, tuple(external))


def resolution_of(address: str, expanded: Expansion, size: int) -> Resolution:
    if expanded.found is None:
        return Resolution(address, RecipientStatus.REMOTE, expansion=expanded)
    if not expanded.found or not (expanded.accounts or expanded.external):
        return Resolution(address, RecipientStatus.UNKNOWN, expansion=expanded)
    roomy = tuple(pk for pk, account in expanded.accounts.items() if _has_room(account, size))
    if expanded.accounts and not roomy and not expanded.external:
        return Resolution(address, RecipientStatus.OVER_QUOTA, expansion=expanded)
    return Resolution(address, RecipientStatus.LOCAL, roomy, expanded.external, expanded)


def resolve_recipient(address: str, *, size: int = 0) -> Resolution:
    """What a recipient address means here (aliases, user+tag and catch-all expanded); reads only."""
    return resolution_of(address, expansion(address), size)


def _has_room(account: _Mailholder, size: int) -> bool:
    """Room for one message of `size` bytes, in bytes and in the message limit."""
    return (account.quota_bytes == 0 or account.used_bytes + max(size, 1) <= account.quota_bytes) and (
        account.quota_messages == 0 or account.used_messages < account.quota_messages
    )


def is_local_domain(domain_name: str) -> bool:
    return Domain.objects.filter(name=ascii_domain(domain_name), active=True).exists()


@dataclass
class DeliveryReport:
    """What became of each envelope recipient of one `deliver` call."""

    message_ids: list[int] = field(default_factory=list)  # stored Message rows
    results: dict[str, RecipientStatus] = field(default_factory=dict)  # per envelope recipient
    forward: list[str] = field(default_factory=list)  # external addresses reached through aliases
    # Sieve rejected the message for every recipient (RFC 5429 2.1.1): the reason, for the MX to refuse it with.
    refused: str | None = None

    @property
    def accepted(self) -> list[str]:
        return [rcpt for rcpt, status in self.results.items() if status is RecipientStatus.LOCAL]
