"""Read-only store queries the SMTP listeners need besides `mailboxes.actions` (run via `asyncdb.call`)."""

from __future__ import annotations

from mailboxes.models import Account, Alias


def sender_addresses(account_id: int) -> list[str]:
    """The addresses an account may send as: its own and every alias listing it directly as a destination.

    Catch-all aliases are not included: they would let a user send as any unknown address of the domain.
    """
    account = Account.objects.select_related("domain").get(pk=account_id)
    own = [account.address]
    candidates = Alias.objects.filter(
        active=True, domain__active=True, local_part__gt="", destinations__icontains=account.address
    ).select_related("domain")
    for alias in candidates:
        if any(d.casefold() == account.address.casefold() for d in alias.destination_list):
            own.append(f"{alias.local_part}@{alias.domain.name}")
    return own
