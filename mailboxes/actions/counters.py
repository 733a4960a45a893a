"""Per-folder and per-account counters: UIDs, modification sequences and quota usage.

Called by actions after `locks.lock()` has locked the rows they change. Reserving UIDs with
`UPDATE ... SET uidnext = uidnext + n ... RETURNING` makes UIDs ascend in commit order under any number of
concurrent deliveries (RFC 3501 2.3.1.1); quota is charged with a conditional UPDATE, so two deliveries can
never overfill an account. The same statements keep the account's message count beside its bytes (its MESSAGE
limit, RFC 9208 5.2), and the folder's counts (`Tally`: what IMAP STATUS and SELECT report) beside its UIDs and
mod-sequence, so counting adds no statement to any action."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass

from django.db import connection

from mailboxes import bulk
from mailboxes.actions.errors import NotFound
from mailboxes.models import Account, Domain, Mailbox, Message, Role


def own_folder(account_id: int, mailbox_id: int) -> int:
    """`mailbox_id` if it is one of the account's folders, else NotFound."""
    if not Mailbox.objects.filter(account_id=account_id, pk=mailbox_id).exists():
        raise NotFound("no such folder")
    return mailbox_id


@dataclass(frozen=True)
class Tally:
    """What some messages add to their folder's counts (negated: what they take away), in the order of
    `COUNT_COLUMNS`."""

    messages: int = 0
    unseen: int = 0
    deleted: int = 0
    size: int = 0
    deleted_size: int = 0

    @classmethod
    def of(cls, size: int, seen: bool, deleted: bool) -> Tally:
        """One message's share."""
        return cls(1, 0 if seen else 1, 1 if deleted else 0, size, size if deleted else 0)

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __sub__(self, other: Tally) -> Tally:
        return Tally(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


NONE = Tally()


def tally(messages: Iterable[tuple[int, bool, bool]]) -> Tally:
    """The share of these messages, each as (size, seen, deleted)."""
    return sum((Tally.of(*message) for message in messages), NONE)


def flagged(size: int, flags: Iterable[str]) -> Tally:
    """The share of a message about to be stored with these IMAP flags (any case, RFC 3501 2.3.2)."""
    lowered = {flag.lower() for flag in flags}
    return Tally.of(size, "\\seen" in lowered, "\\deleted" in lowered)


def flagged_all(messages: Iterable[tuple[int, Iterable[str]]]) -> Tally:
    """The share of messages about to be stored, each as (size, IMAP flags)."""
    return sum((flagged(size, flags) for size, flags in messages), NONE)


def tallies(copies: Iterable[tuple[int, int, Iterable[str]]]) -> dict[int, Tally]:
    """The shares of messages about to be stored, each as (folder id, size, IMAP flags), by folder."""
    found: dict[int, Tally] = {}
    for folder_id, size, flags in copies:
        found[folder_id] = found.get(folder_id, NONE) + flagged(size, flags)
    return found


COUNT_COLUMNS = ("message_count", "unseen_count", "deleted_count", "total_size", "deleted_size")
_COUNTS = ", ".join(f"{column} = {column} + %s" for column in COUNT_COLUMNS)


def allocate_uids(
    mailbox_id: int, count: int, added: Tally = NONE, *, account_id: int | None = None
) -> tuple[int, int]:
    """Lock the folder row, reserve `count` UIDs and add `added` to its counts. Returns (first uid, new modseq).
    With `account_id`, NotFound unless the folder is that account's (no statement of its own to check it)."""
    table = Mailbox._meta.db_table
    owned = "" if account_id is None else " AND account_id = %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1, {_COUNTS} "
            f"WHERE id = %s{owned} RETURNING uidnext, highestmodseq",
            [count, *astuple(added), mailbox_id, *([] if account_id is None else [account_id])],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("the folder no longer exists")
    return row[0] - count, row[1]


# Only while the account and its domain take mail: a recipient looked up at RCPT may have been disabled since.
_ALLOCATE_INBOX_SQL = f"""
    UPDATE {Mailbox._meta.db_table} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1, {_COUNTS}
    WHERE account_id = %s AND role = %s AND EXISTS (
        SELECT 1 FROM {Account._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id
        WHERE a.id = %s AND a.is_active AND d.active
    )
    RETURNING id, uidnext, highestmodseq
"""


def allocate_inbox_uids(account_id: int, added: Tally) -> tuple[int, int, int]:
    """Lock an account's Inbox, reserve UIDs for the messages of `added` and count them. Returns (inbox id,
    first uid, new modseq)."""
    count = added.messages
    with connection.cursor() as cursor:
        cursor.execute(_ALLOCATE_INBOX_SQL, [count, *astuple(added), account_id, Role.INBOX.value, account_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("the account has no Inbox, or takes no mail")
    return row[0], row[1] - count, row[2]


def bump_modseq(mailbox_id: int, change: Tally = NONE) -> int:
    """Raise the folder's mod-sequence (and change its counts by `change`); returns the new one."""
    return allocate_uids(mailbox_id, 0, change)[1]


_BUMP_SQL = (
    f"UPDATE {Mailbox._meta.db_table} SET highestmodseq = highestmodseq + 1, {_COUNTS} "
    "WHERE id = %s RETURNING highestmodseq AS value"
)


def bump_and_update(mailbox_id: int, change: Tally, messages: Sequence[Message], names: Sequence[str]) -> int:
    """`bump_modseq`, and write `names` of these changed messages of the folder with the new mod-sequence as
    theirs (`bulk.update`): on PostgreSQL in one statement, the folder locked already. Returns the new one."""
    if connection.vendor != "postgresql":
        modseq = bump_modseq(mailbox_id, change)
        for message in messages:
            message.modseq = modseq
        bulk.update(messages, ["modseq", *names])
        return modseq
    modseq = int(bulk.update_stamped(messages, names, "modseq", _stamp(mailbox_id, change)))
    for message in messages:
        message.modseq = modseq
    return modseq


def bump_and_update_statement(
    mailbox_id: int, change: Tally, messages: Sequence[Message], names: Sequence[str]
) -> tuple[str, list]:
    """PostgreSQL: the statement of `bump_and_update`, for a caller that sends it itself (`flights`); its one row
    holds the new mod-sequence, which the caller gives the messages."""
    return bulk.stamped_statement(messages, names, "modseq", _stamp(mailbox_id, change))


def _stamp(mailbox_id: int, change: Tally) -> tuple[str, list]:
    return _BUMP_SQL, [*astuple(change), mailbox_id]


def uncount(removed: Mapping[int, Tally]) -> None:
    """Take back what a delivery counted for copies it did not store after all (no room left in the account):
    rare, so paid for with a statement of its own rather than a quota check before the UIDs."""
    with connection.cursor() as cursor:
        for folder_id, share in sorted(removed.items()):
            cursor.execute(
                f"UPDATE {Mailbox._meta.db_table} SET {_COUNTS} WHERE id = %s",
                [*(-value for value in astuple(share)), folder_id],
            )


def charge_quota(account_id: int, size: int, count: int = 1) -> bool:
    """Add `count` messages of `size` bytes in all to the account's usage if they fit both its limits (bytes,
    and messages: RFC 9208 5.2); False (and no change) if they do not."""
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used_bytes = used_bytes + %s, used_messages = used_messages + %s "
            "WHERE id = %s AND (quota_bytes = 0 OR used_bytes + %s <= quota_bytes) "
            "AND (quota_messages = 0 OR used_messages + %s <= quota_messages)",
            [size, count, account_id, size, count],
        )
        return cursor.rowcount == 1


def charge_quota_each(account_id: int, sizes: Sequence[int]) -> list[bool]:
    """Charge several messages: all at once if they fit together, else one by one in order (those that fit)."""
    if charge_quota(account_id, sum(sizes), len(sizes)):
        return [True] * len(sizes)
    return [charge_quota(account_id, size) for size in sizes]


_RELEASE_QUOTA_SQL = (
    f"UPDATE {Account._meta.db_table} SET used_bytes = CASE WHEN used_bytes > %s THEN used_bytes - %s ELSE 0 END, "
    "used_messages = CASE WHEN used_messages > %s THEN used_messages - %s ELSE 0 END WHERE id = %s"
)


def release_quota(account_id: int, size: int, count: int) -> None:
    """Take `count` messages of `size` bytes in all off the account's usage."""
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_QUOTA_SQL, [size, size, count, count, account_id])


# The folder's new mod-sequence is `folder`'s value.
RELEASE_CTES = f"folder AS ({_BUMP_SQL}), account AS ({_RELEASE_QUOTA_SQL})"
_RELEASE_SQL = f"WITH {RELEASE_CTES} SELECT value FROM folder"


# A statement's own share of messages it finds (a CTE `share` of one row, none when it finds none), as `Tally.of`
# counts each: column gone_<field> for each of Tally's fields.
_SHARE_COLUMNS = {
    "messages": "count(*)",
    "unseen": "count(*) FILTER (WHERE NOT seen)",
    "deleted": "count(*) FILTER (WHERE deleted)",
    "size": "coalesce(sum(size), 0)",
    "deleted_size": "coalesce(sum(size) FILTER (WHERE deleted), 0)",
}
_FOLDER_RELEASE = ", ".join(
    f"{column} = {column} - gone_{name}" for column, name in zip(COUNT_COLUMNS, _SHARE_COLUMNS, strict=True)
)


def release_found_ctes(rows: str) -> str:
    """`RELEASE_CTES` for the messages of the CTE `rows` (with size, seen and deleted) that the statement found
    itself: their share off the folder %(folder)s with its next mod-sequence (`folder`'s value) and off the account
    %(account)s, made only when there is one."""
    share = ", ".join(f"{sql} AS gone_{name}" for name, sql in _SHARE_COLUMNS.items())
    return f"""share AS (SELECT {share} FROM {rows} HAVING count(*) > 0),
        folder AS (
            UPDATE {Mailbox._meta.db_table} SET highestmodseq = highestmodseq + 1, {_FOLDER_RELEASE}
            FROM share WHERE id = %(folder)s
            RETURNING highestmodseq AS value
        ),
        account AS (
            UPDATE {Account._meta.db_table} SET used_bytes = GREATEST(used_bytes - gone_size, 0),
                used_messages = GREATEST(used_messages - gone_messages, 0)
            FROM share WHERE id = %(account)s
        )"""


def release_parameters(mailbox_id: int, removed: Tally, account_id: int) -> list[int]:
    """The parameters of `RELEASE_CTES` (positional) for messages leaving the folder and the account."""
    quota = [removed.size, removed.size, removed.messages, removed.messages, account_id]
    return [*(-value for value in astuple(removed)), mailbox_id, *quota]


def release(mailbox_id: int, removed: Tally, account_id: int) -> int:
    """Messages leave a folder and their account: take their share off the folder's counts, raising its
    mod-sequence, and their size and number off the account's usage, in one statement on PostgreSQL (the
    folder and the account locked already). Returns the new mod-sequence."""
    if connection.vendor != "postgresql":
        modseq = bump_modseq(mailbox_id, NONE - removed)
        release_quota(account_id, removed.size, removed.messages)
        return modseq
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL, release_parameters(mailbox_id, removed, account_id))
        return int(cursor.fetchone()[0])


# Folders named by id, for a delivery: the same reservation, and the same check that the folder's account and its
# domain still take mail, as for an Inbox.
_TAKES_MAIL = f"""EXISTS (
    SELECT 1 FROM {Account._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id
    WHERE a.id = {{table}}.account_id AND a.is_active AND d.active
)"""
_ALLOCATE_FOLDER_SQL = f"""
    UPDATE {Mailbox._meta.db_table} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1, {_COUNTS}
    WHERE id = %s AND {_TAKES_MAIL.format(table=Mailbox._meta.db_table)}
    RETURNING id, uidnext - %s, highestmodseq
"""
_ADD_EACH = ", ".join(f"{column} = m.{column} + v.{column}" for column in COUNT_COLUMNS)
_ALLOCATE_FOLDERS_SQL = f"""
    UPDATE {Mailbox._meta.db_table} AS m SET uidnext = m.uidnext + v.message_count,
        highestmodseq = m.highestmodseq + 1, {_ADD_EACH}
    FROM unnest(%s::int[], {", ".join(["%s::bigint[]"] * len(COUNT_COLUMNS))}) AS v(id, {", ".join(COUNT_COLUMNS)})
    WHERE m.id = v.id AND {_TAKES_MAIL.format(table="m")}
    RETURNING m.id, m.uidnext - v.message_count, m.highestmodseq
"""


def allocate_delivery_uids(counts: Mapping[int, Tally]) -> dict[int, tuple[int, int]]:
    """Reserve UIDs in these folders for a delivery and count the messages it stores there (folder id -> their
    share), in one statement on PostgreSQL: folder id -> (first uid, new modseq). NotFound if a folder is gone,
    or its account takes no mail. Lock the folders first when there are several (`locks.lock()`)."""
    rows = []
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql" or len(counts) == 1:
            for folder_id, added in sorted(counts.items()):
                cursor.execute(_ALLOCATE_FOLDER_SQL, [added.messages, *astuple(added), folder_id, added.messages])
                rows.extend(cursor.fetchall())
        else:
            folders = sorted(counts)
            shares = [astuple(counts[pk]) for pk in folders]
            cursor.execute(_ALLOCATE_FOLDERS_SQL, [folders, *(list(column) for column in zip(*shares, strict=True))])
            rows = cursor.fetchall()
    if len(rows) != len(counts):
        raise NotFound("a folder no longer exists, or its account takes no mail")
    return {folder_id: (first, modseq) for folder_id, first, modseq in rows}


# One folder of one account (the MX's common case) in one statement: the folder's UIDs reserved, then the account
# charged for the messages if they fit. The account's UPDATE waits for the folder's (its condition reads the
# folder's result), so the rows are locked in the store's order, the folder and then the account. `direct` goes
# on from these two to store the message in the same statement.
RESERVE_CTES = f"""
    WITH folder AS (
        UPDATE {Mailbox._meta.db_table} SET uidnext = uidnext + %(count)s, highestmodseq = highestmodseq + 1,
            {", ".join(f"{column} = {column} + %({column})s" for column in COUNT_COLUMNS)}
        WHERE account_id = %(account)s AND {{folder}} AND EXISTS (
            SELECT 1 FROM {Account._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id
            WHERE a.id = %(account)s AND a.is_active AND d.active
        )
        RETURNING id, uidnext - %(count)s AS first_uid, highestmodseq
    ), charged AS (
        UPDATE {Account._meta.db_table}
        SET used_bytes = used_bytes + %(size)s, used_messages = used_messages + %(count)s
        WHERE id = %(account)s AND EXISTS (SELECT 1 FROM folder)
            AND (quota_bytes = 0 OR used_bytes + %(size)s <= quota_bytes)
            AND (quota_messages = 0 OR used_messages + %(count)s <= quota_messages)
        RETURNING id
    )"""
_RESERVE_SQL = RESERVE_CTES + "\n    SELECT id, first_uid, highestmodseq, EXISTS (SELECT 1 FROM charged) FROM folder"
_RESERVE_INBOX_SQL = _RESERVE_SQL.format(folder="role = %(role)s")
_RESERVE_FOLDER_SQL = _RESERVE_SQL.format(folder="id = %(folder)s")


def reserve_parameters(account_id: int, sizes: Sequence[int], added: Tally) -> dict[str, int]:
    """The parameters of `RESERVE_CTES` for messages of these sizes, adding `added` to the folder's counts."""
    return {
        "count": len(sizes),
        "size": sum(sizes),
        "account": account_id,
        **dict(zip(COUNT_COLUMNS, astuple(added), strict=True)),
    }


def reserve(
    account_id: int, sizes: Sequence[int], folder_id: int | None, added: Tally
) -> tuple[int, int, int, list[bool]]:
    """For messages of these sizes into one folder of one account (its Inbox when `folder_id` is None): reserve
    their UIDs, add their share `added` to the folder's counts, and charge the account as `charge_quota_each`
    does. Returns (folder id, first uid, new modseq, whether each fits). NotFound if the folder is gone or not
    the account's, or the account takes no mail; nothing is locked before. On PostgreSQL one statement when they
    fit together, which they nearly always do (those that do not are taken off the counts again: `uncount`)."""
    if connection.vendor != "postgresql":
        if folder_id is None:
            reserved_in, first_uid, modseq = allocate_inbox_uids(account_id, added)
        else:
            own_folder(account_id, folder_id)  # as the statement below checks
            reserved_in, [(first_uid, modseq)] = folder_id, allocate_delivery_uids({folder_id: added}).values()
        return reserved_in, first_uid, modseq, charge_quota_each(account_id, sizes)
    params = reserve_parameters(account_id, sizes, added)
    with connection.cursor() as cursor:
        if folder_id is None:
            cursor.execute(_RESERVE_INBOX_SQL, {**params, "role": Role.INBOX.value})
        else:
            cursor.execute(_RESERVE_FOLDER_SQL, {**params, "folder": folder_id})
        row = cursor.fetchone()
    if row is None:
        raise NotFound("the folder no longer exists, or its account takes no mail")
    reserved_in, first_uid, modseq, charged = row
    if charged:
        fits = [True] * len(sizes)
    elif len(sizes) == 1:
        fits = [False]
    else:  # not all together: one by one in order, as charge_quota_each does
        fits = [charge_quota(account_id, size) for size in sizes]
    return reserved_in, first_uid, modseq, fits


_CHARGE_MANY_SQL = f"""
    UPDATE {Account._meta.db_table} AS a SET used_bytes = a.used_bytes + v.size, used_messages = a.used_messages + v.n
    FROM unnest(%s::int[], %s::bigint[], %s::int[]) AS v(id, size, n)
    WHERE a.id = v.id AND (a.quota_bytes = 0 OR a.used_bytes + v.size <= a.quota_bytes)
        AND (a.quota_messages = 0 OR a.used_messages + v.n <= a.quota_messages)
    RETURNING a.id
"""


def charge_quota_many(sizes: Mapping[int, Sequence[int]]) -> dict[int, list[bool]]:
    """`charge_quota_each` for several accounts: the accounts where everything fits are charged in one
    statement, the others one message at a time."""
    if connection.vendor != "postgresql" or len(sizes) == 1:
        return {account_id: charge_quota_each(account_id, each) for account_id, each in sorted(sizes.items())}
    accounts = sorted(sizes)
    with connection.cursor() as cursor:
        cursor.execute(
            _CHARGE_MANY_SQL, [accounts, [sum(sizes[pk]) for pk in accounts], [len(sizes[pk]) for pk in accounts]]
        )
        fitted = {row[0] for row in cursor.fetchall()}
    return {
        account_id: [True] * len(sizes[account_id])
        if account_id in fitted
        else [charge_quota(account_id, size) for size in sizes[account_id]]
        for account_id in accounts
    }
