"""Per-folder and per-account counters: UIDs, modification sequences and quota usage.

Called by actions after `locks.lock()` has locked the rows they change. Reserving UIDs with
`UPDATE ... SET uidnext = uidnext + n ... RETURNING` makes UIDs ascend in commit order under any number of
concurrent deliveries (RFC 3501 2.3.1.1); quota is charged with a conditional UPDATE, so two deliveries can
never overfill an account."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from mailboxes.actions.errors import NotFound
from mailboxes.models import Account, Domain, Mailbox, Role


def own_folder(account: Account, mailbox_id: int) -> int:
    """`mailbox_id` if it is one of the account's folders, else NotFound."""
    if not Mailbox.objects.filter(account=account, pk=mailbox_id).exists():
        raise NotFound("no such folder")
    return mailbox_id


def allocate_uids(mailbox_id: int, count: int) -> tuple[int, int]:
    """Lock the folder row and reserve `count` UIDs. Returns (first uid, new modseq)."""
    table = Mailbox._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1 "
            "WHERE id = %s RETURNING uidnext, highestmodseq",
            [count, mailbox_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("the folder no longer exists")
    return row[0] - count, row[1]


# Only while the account and its domain take mail: a recipient looked up at RCPT may have been disabled since.
_ALLOCATE_INBOX_SQL = f"""
    UPDATE {Mailbox._meta.db_table} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1
    WHERE account_id = %s AND role = %s AND EXISTS (
        SELECT 1 FROM {Account._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id
        WHERE a.id = %s AND a.is_active AND d.active
    )
    RETURNING id, uidnext, highestmodseq
"""


def allocate_inbox_uids(account_id: int, count: int) -> tuple[int, int, int]:
    """Lock an account's Inbox and reserve `count` UIDs. Returns (inbox id, first uid, new modseq)."""
    with connection.cursor() as cursor:
        cursor.execute(_ALLOCATE_INBOX_SQL, [count, account_id, Role.INBOX.value, account_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("the account has no Inbox, or takes no mail")
    return row[0], row[1] - count, row[2]


def bump_modseq(mailbox_id: int) -> int:
    return allocate_uids(mailbox_id, 0)[1]


def charge_quota(account_id: int, size: int) -> bool:
    """Add `size` to the account's usage if it fits its quota; False (and no change) if it does not."""
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used_bytes = used_bytes + %s "
            "WHERE id = %s AND (quota_bytes = 0 OR used_bytes + %s <= quota_bytes)",
            [size, account_id, size],
        )
        return cursor.rowcount == 1


def charge_quota_each(account_id: int, sizes: Sequence[int]) -> list[bool]:
    """Charge several messages: all at once if they fit together, else one by one in order (those that fit)."""
    if charge_quota(account_id, sum(sizes)):
        return [True] * len(sizes)
    return [charge_quota(account_id, size) for size in sizes]


def release_quota(account_id: int, size: int) -> None:
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used_bytes = CASE WHEN used_bytes > %s THEN used_bytes - %s ELSE 0 END WHERE id = %s",
            [size, size, account_id],
        )
