"""Domains, accounts and aliases: created, changed and deleted only here (Django admin included)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.hashers import make_password
from django.db.models import Q

from mailboxes import changes
from mailboxes.actions import recycling
from mailboxes.actions.errors import AlreadyExists, InvalidName, ServiceError, UnknownDomain
from mailboxes.actions.locks import action, lock
from mailboxes.models import (
    STANDARD_FOLDERS,
    Account,
    Alias,
    AuthFailure,
    Domain,
    Mailbox,
    Message,
    RecycledMessage,
    Subscription,
    split_address,
)
from mailcore.idn import ascii_domain, unicode_domain, valid_domain


@action
def create_domain(name: str) -> Domain:
    """A new domain, stored in its A-label form whether it is given as U-labels or A-labels."""
    canonical = ascii_domain(name)
    if not canonical or "@" in canonical or not valid_domain(canonical):
        raise InvalidName(f"{name!r} is not a domain name")
    if Domain.objects.filter(name=canonical).exists():
        raise AlreadyExists(f"domain {unicode_domain(canonical)} exists already")
    return Domain.objects.create(name=canonical)


@action
def update_domain(domain: Domain, *, name: str, active: bool) -> Domain:
    """Rename or enable/disable a domain. A rename moves every account's address (the login) with it, in the
    same transaction, so its users sign in and receive mail under the new name at once."""
    canonical = ascii_domain(name)
    if canonical != domain.name:
        if not valid_domain(canonical) or "@" in canonical:
            raise InvalidName(f"{name!r} is not a domain name")
        if Domain.objects.filter(name=canonical).exclude(pk=domain.pk).exists():
            raise AlreadyExists(f"domain {unicode_domain(canonical)} exists already")
        accounts = list(Account.objects.filter(domain=domain).order_by("id"))
        lock(accounts=[account.pk for account in accounts])
        for account in accounts:
            account.address = f"{account.local_part}@{canonical}"
        Account.objects.bulk_update(accounts, ["address"])
    Domain.objects.filter(pk=domain.pk).update(name=canonical, active=active)
    domain.name, domain.active = canonical, active
    return domain


def create_account(
    address: str,
    password: str | None,
    *,
    quota_bytes: int = 0,
    display_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> Account:
    """A new account with its standard folders (Inbox, Sent, Drafts, Trash, Junk, Archive).

    The password is hashed before the transaction starts: Argon2 takes a CPU-bound while that no lock or
    connection should wait for.
    """
    return _create_account(
        address,
        make_password(password),
        quota_bytes=quota_bytes,
        display_name=display_name,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )


@action
def _create_account(
    address: str, password_hash: str, *, quota_bytes: int, display_name: str, is_staff: bool, is_superuser: bool
) -> Account:
    local, domain_name = split_address(address)
    if not local or not domain_name or len(local) > 64:
        raise InvalidName(f"{address!r} is not a valid address")
    domain = Domain.objects.filter(name=domain_name).first()
    if domain is None:
        raise UnknownDomain(f"domain {domain_name} does not exist; create it first")
    if Account.objects.filter(domain=domain, local_part=local).exists():
        raise AlreadyExists(f"account {local}@{domain_name} exists already")
    account = Account(
        address=f"{local}@{domain_name}",
        domain=domain,
        local_part=local,
        display_name=display_name,
        quota_bytes=quota_bytes,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    account.password = password_hash
    account.save()
    Mailbox.objects.bulk_create(Mailbox(account=account, name=name, role=role) for name, role in STANDARD_FOLDERS)
    Subscription.objects.bulk_create(Subscription(account=account, name=name) for name, _ in STANDARD_FOLDERS)
    return account


def set_password(account: Account, password: str) -> None:
    """Change an account's password (hashed before the transaction)."""
    _store_password(account, make_password(password))
    account.password = Account.objects.values_list("password", flat=True).get(pk=account.pk)


@action
def _store_password(account: Account, password_hash: str) -> None:
    lock(accounts=[account.pk])
    Account.objects.filter(pk=account.pk).update(password=password_hash)


@action
def create_alias(address: str, destinations: Sequence[str]) -> Alias:
    """An alias; an address like "@example.com" makes a catch-all for the whole domain."""
    local, domain_name = split_address(address)
    domain = Domain.objects.filter(name=domain_name).first()
    if domain is None:
        raise UnknownDomain(f"domain {domain_name} does not exist; create it first")
    if not destinations:
        raise InvalidName("an alias needs at least one destination")
    return Alias.objects.create(domain=domain, local_part=local, destinations=", ".join(destinations))


@action
def update_alias(alias: Alias, *, local_part: str, destinations: Sequence[str], active: bool) -> Alias:
    if not destinations:
        raise InvalidName("an alias needs at least one destination")
    alias.local_part = local_part.strip().lower()
    alias.destinations = ", ".join(destinations)
    alias.active = active
    alias.save(update_fields=["local_part", "destinations", "active"])
    return alias


@action
def delete_alias(alias: Alias) -> None:
    Alias.objects.filter(pk=alias.pk).delete()


# Account settings an administrator changes; the address is fixed (it keys the login and the mail).
ACCOUNT_SETTINGS = ("display_name", "quota_bytes", "quota_messages", "is_active", "is_staff", "is_superuser")


@action
def update_account(account: Account, **settings: object) -> Account:
    """Change an account's settings (see ACCOUNT_SETTINGS). Quota is a limit on new mail: lowering it below
    what is stored keeps the mail and refuses more until there is room."""
    unknown = set(settings) - set(ACCOUNT_SETTINGS)
    if unknown:
        raise InvalidName(f"not an account setting: {', '.join(sorted(unknown))}")
    for name in ("quota_bytes", "quota_messages"):
        quota = settings.get(name)
        if isinstance(quota, int) and quota < 0:
            raise InvalidName("a quota cannot be negative; 0 means no limit")
    lock(accounts=[account.pk])
    Account.objects.filter(pk=account.pk).update(**settings)
    for name, value in settings.items():
        setattr(account, name, value)
    return account


class StillQueued(ServiceError):
    """Outbound mail from the account(s) is still waiting for delivery."""


def _queued_from(addresses: Sequence[str]) -> int:
    from relay.models import OPEN_STATES, OutboundRecipient

    return OutboundRecipient.objects.filter(message__sender__in=list(addresses), state__in=OPEN_STATES).count()


def _remove_accounts(accounts: Sequence[Account], *, force: bool) -> None:
    """Delete accounts with everything that is theirs: folders, messages, the bodies no other message shares,
    their subscriptions, and their addresses in aliases (an alias left with no destination goes too)."""
    addresses = [account.address for account in accounts]
    queued = _queued_from(addresses)
    if queued and not force:
        raise StillQueued(
            f"{queued} outbound message(s) from {', '.join(addresses)} still wait for delivery; "
            "delete them from the queue first, or delete anyway"
        )
    ids = [account.pk for account in accounts]
    folders = list(Mailbox.objects.filter(account_id__in=ids).values_list("id", flat=True))
    lock(folders=folders, accounts=ids)
    bodies = set(Message.objects.filter(account_id__in=ids).values_list("body_id", flat=True))
    bodies |= set(RecycledMessage.objects.filter(account_id__in=ids).values_list("body_id", flat=True))
    Message.objects.filter(account_id__in=ids).delete()
    RecycledMessage.objects.filter(account_id__in=ids).delete()
    recycling.drop_bodies(bodies)
    Mailbox.objects.filter(account_id__in=ids).delete()
    Subscription.objects.filter(account_id__in=ids).delete()
    gone = {address.lower() for address in addresses}
    for alias in Alias.objects.filter(_mentions(addresses)):
        kept = [d for d in alias.destination_list if d.lower() not in gone]
        if kept:
            Alias.objects.filter(pk=alias.pk).update(destinations=", ".join(kept))
        else:
            Alias.objects.filter(pk=alias.pk).delete()
    AuthFailure.objects.filter(address__in=[address.lower() for address in addresses]).delete()
    Account.objects.filter(pk__in=ids).delete()
    changes.notify_many((account_id, changes.ANYWHERE) for account_id in ids)


def _mentions(addresses: Sequence[str]) -> Q:
    condition = Q(pk__in=[])
    for address in addresses:
        condition |= Q(destinations__icontains=address)
    return condition


@action
def delete_account(account: Account, *, force: bool = False) -> None:
    """Delete an account and all its mail. Refused (StillQueued) while mail it sent waits in the outbound queue,
    unless `force`: then that mail is still delivered, and bounces of it have nobody to reach."""
    _remove_accounts([account], force=force)


@action
def delete_domain(domain: Domain, *, force: bool = False) -> None:
    """Delete a domain with its accounts (as `delete_account`), aliases and DKIM keys."""
    _remove_accounts(list(Account.objects.filter(domain=domain).order_by("id")), force=force)
    Alias.objects.filter(domain=domain).delete()
    Domain.objects.filter(pk=domain.pk).delete()
