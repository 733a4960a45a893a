"""Domains, accounts and aliases: created, changed and deleted only here (Django admin included)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.hashers import make_password

from mailboxes.actions.errors import AlreadyExists, InvalidName, UnknownDomain
from mailboxes.actions.locks import action, lock
from mailboxes.models import STANDARD_FOLDERS, Account, Alias, Domain, Mailbox, split_address


@action
def create_domain(name: str) -> Domain:
    name = name.strip().lower().rstrip(".")
    if not name or "@" in name or " " in name:
        raise InvalidName(f"{name!r} is not a domain name")
    if Domain.objects.filter(name=name).exists():
        raise AlreadyExists(f"domain {name} exists already")
    return Domain.objects.create(name=name)


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
