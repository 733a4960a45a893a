"""The address book's writes: one contact at a time, a vCard import, and the people the user writes to."""

from __future__ import annotations

from collections.abc import Iterable
from email.headerregistry import Address

from django.db import transaction

from mailboxes.models import Account
from webmail.addresses import flatten, valid_address
from webmail.models import Contact
from webmail.vcard import Card


def save(account: Account, name: str, address: str, *, source: str, rename: bool = True) -> Contact | None:
    """Add the address, or update its name (only if it has none, unless `rename`); None for a bad address."""
    address = address.strip()
    if not valid_address(address):
        return None
    name = flatten(name)[:200]
    existing = Contact.objects.filter(account=account, address__iexact=address).first()
    if existing is None:
        return Contact.objects.create(account=account, name=name, address=address, source=source)
    if name and (rename or not existing.name) and name != existing.name:
        existing.name = name
        existing.save(update_fields=["name"])
    return existing


class ContactError(ValueError):
    """Why a change to a contact was refused, as the page says it."""


def change(account: Account, contact_id: int, name: str, address: str) -> Contact:
    """Rename a contact or correct its address (then it counts as typed in by the user)."""
    address = address.strip()
    if not valid_address(address):
        raise ContactError(f"Not an address: {address[:100]}")
    with transaction.atomic():
        contact = Contact.objects.filter(account=account, pk=contact_id).first()
        if contact is None:
            raise ContactError("That contact is gone.")
        others = Contact.objects.filter(account=account, address__iexact=address).exclude(pk=contact.pk)
        if others.exists():
            raise ContactError(f"{address} is already in your address book.")
        contact.name, contact.address, contact.source = flatten(name)[:200], address, Contact.Source.MANUAL
        contact.save(update_fields=["name", "address", "source"])
    return contact


def remember_recipients(account: Account, recipients: Iterable[Address]) -> None:
    """After a message was sent: whoever it went to is in the address book (their name filled in if missing)."""
    with transaction.atomic():
        for recipient in recipients:
            if recipient.addr_spec.lower() != account.address.lower():
                save(account, recipient.display_name, recipient.addr_spec, source=Contact.Source.SENT, rename=False)


def import_cards(account: Account, cards: list[Card]) -> int:
    """Every address of every card; returns how many addresses were read."""
    count = 0
    with transaction.atomic():
        for card in cards:
            for address in card.addresses:
                if save(account, card.name, address, source=Contact.Source.IMPORTED) is not None:
                    count += 1
    return count
