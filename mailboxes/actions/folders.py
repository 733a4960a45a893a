"""Folders: create (with parents), delete, rename (with subfolders), and the account's subscriptions.

Subscriptions are names (`Subscription`), not folders: a folder made here is subscribed; deleting it keeps the
subscription (RFC 9051 6.3.7: a server MUST NOT unilaterally remove a name from the subscription list); renaming
it takes the subscriptions of the folder and of the names below it along, as Dovecot does. Subscriptions of an
account change under its account row lock, which the actions here take after any folder lock (the global order).
"""

from __future__ import annotations

import functools
import unicodedata

from django.db import IntegrityError, connection
from django.db.models import Q

from mailboxes import changes
from mailboxes.actions import counters
from mailboxes.actions.errors import AlreadyExists, HasChildren, InvalidName, NotFound
from mailboxes.actions.locks import action, lock
from mailboxes.actions.messages import move, remove
from mailboxes.models import Account, Mailbox, Message, RecentMark, Role, Subscription

MAX_FOLDER_DEPTH = 20


def normalise_folder_name(name: str) -> str:
    """Validate a folder path ("/"-separated); INBOX in any case is the Inbox (RFC 3501 5.1). Names are kept in
    Unicode NFC (RFC 9051 5.1, RFC 5198 2), so a name written in another normalisation form finds the same
    folder."""
    name = unicodedata.normalize("NFC", name)
    if name.upper() == "INBOX":
        return "INBOX"
    parts = name.split("/")
    if (
        not name
        or len(name) > 512
        or any(not part or part in {".", ".."} or part != part.strip() for part in parts)
        or len(parts) > MAX_FOLDER_DEPTH
        or any(ord(ch) < 32 or ch in "\x7f*%" for ch in name)
    ):
        raise InvalidName(f"{name!r} is not a valid folder name")
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return "/".join(parts)


@action
def create_mailbox(account: Account, name: str, *, role: str = "") -> Mailbox:
    """Create a folder and any missing parents (RFC 3501 6.3.3), with a special use (`Role`, RFC 6154) when
    given; a use another folder has is refused by the database's unique constraint."""
    name = normalise_folder_name(name)
    if Mailbox.objects.filter(account=account, name=name).exists():
        raise AlreadyExists("a folder of that name exists already")
    parts = name.split("/")
    created = None
    new = []
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        created, made = Mailbox.objects.get_or_create(account=account, name=path)
        if made:
            new.append(path)
    assert created is not None
    _subscribe(account.pk, new)
    if role:
        created.role = role
        created.save(update_fields=["role"])
    return created


# The mark moved and its old place returned in one statement (an upsert: a folder no session took messages from
# has no mark yet). The folder's row is read as committed (no lock): a message committed after that is left to
# the next claim. Only the mark's row is locked, and the update reads its latest version, after waiting for
# another claim that held it.
_CLAIM_SQL = """
    INSERT INTO {mark} AS r (mailbox_id, first_uid, taken_from)
    SELECT f.id, {least}(COALESCE(%s, f.uidnext), f.uidnext), 1 FROM {folder} f WHERE f.id = %s
    ON CONFLICT (mailbox_id)
    DO UPDATE SET taken_from = r.first_uid, first_uid = {greatest}(r.first_uid, excluded.first_uid)
    RETURNING taken_from
"""
_SCALAR = {"postgresql": ("LEAST", "GREATEST"), "sqlite": ("MIN", "MAX")}


@functools.cache
def _claim_sql(vendor: str) -> str:
    least, greatest = _SCALAR[vendor]
    return _CLAIM_SQL.format(
        mark=RecentMark._meta.db_table, folder=Mailbox._meta.db_table, least=least, greatest=greatest
    )


def claim_recent(mailbox_id: int, up_to: int | None) -> int:
    """\\Recent (RFC 3501 2.3.2) shared by every IMAP process: the caller takes the folder's messages from
    the returned UID on (below `up_to`, or all when None), and no later caller gets them again.

    One statement, which waits only for another session's claim, never for the folder's writers: it takes none of
    the store's locks (the mark's row is locked by this statement alone)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(_claim_sql(connection.vendor), [up_to, mailbox_id])
            claimed = cursor.fetchone()
    except IntegrityError as exc:  # outside a transaction: the folder went while the mark was written
        raise NotFound("the folder no longer exists") from exc
    if claimed is None:
        raise NotFound("the folder no longer exists")
    return claimed[0]


def _subscribe(account_id: int, names: list[str]) -> None:
    """Subscribe to new folders' names (a name subscribed already stays so). No lock: inserting a row another
    transaction inserts too is settled by the unique constraint."""
    Subscription.objects.bulk_create(
        [Subscription(account_id=account_id, name=name) for name in names], ignore_conflicts=True
    )


def _own(account: Account, mailbox_id: int) -> Mailbox:
    mailbox = Mailbox.objects.filter(account=account, pk=mailbox_id).first()
    if mailbox is None:
        raise NotFound("no such folder")
    return mailbox


@action
def delete_mailbox(account: Account, mailbox_id: int) -> None:
    """Delete a folder and its messages; the Inbox and folders with subfolders cannot be deleted. Its
    subscription stays (RFC 9051 6.3.5, 6.3.7)."""
    mailbox = _own(account, mailbox_id)
    lock(folders=[mailbox.pk], accounts=[account.pk])
    if mailbox.role == Role.INBOX:
        raise InvalidName("the Inbox cannot be deleted")
    if Mailbox.objects.filter(account=account, name__startswith=mailbox.name + "/").exists():
        raise HasChildren("the folder has subfolders; delete them first")
    remove(account.pk, mailbox.pk, Q())
    mailbox.delete()
    changes.notify(account.pk, mailbox_id)


@action
def rename_mailbox(account: Account, mailbox_id: int, new_name: str) -> Mailbox:
    """Rename a folder with its subfolders, keeping UIDs and UIDVALIDITY (RFC 3501 6.3.5).

    Renaming the Inbox moves its messages into a new folder of that name and leaves the Inbox empty (the new
    folder's row sorts after every existing one, so the move's lock of it keeps the lock order).
    """
    mailbox = _own(account, mailbox_id)
    old_prefix = mailbox.name + "/"
    children = list(Mailbox.objects.filter(account=account, name__startswith=old_prefix))
    lock(folders=[mailbox.pk, *(child.pk for child in children)])
    counters.bump_modseq(mailbox.pk)
    new_name = normalise_folder_name(new_name)
    if new_name == "INBOX" or Mailbox.objects.filter(account=account, name=new_name).exists():
        raise AlreadyExists("a folder of that name exists already")
    new = []
    parent = new_name.rpartition("/")[0]
    if parent:
        for depth in range(1, parent.count("/") + 2):
            path = "/".join(parent.split("/")[:depth])
            if Mailbox.objects.get_or_create(account=account, name=path)[1]:
                new.append(path)
    if mailbox.role == Role.INBOX:
        # The Inbox stays, with its subscription; the folder that takes its messages is a new one.
        target = Mailbox.objects.create(account=account, name=new_name)
        _subscribe(account.pk, [*new, new_name])
        uids = list(Message.objects.filter(mailbox=mailbox).values_list("uid", flat=True))
        move(account, mailbox.pk, uids, target.pk)
        return target
    lock(accounts=[account.pk])
    for child in children:
        child.name = new_name + "/" + child.name.removeprefix(old_prefix)
        child.save(update_fields=["name"])
    old_name, mailbox.name = mailbox.name, new_name
    mailbox.save(update_fields=["name"])
    _move_subscriptions(account.pk, old_name, new_name)
    _subscribe(account.pk, new)
    return mailbox


def _move_subscriptions(account_id: int, old: str, new: str) -> None:
    """RENAME takes along the subscriptions of the folder and of every name below it, folders or not, as Dovecot
    does. A name subscribed already under the new name stays one subscription."""
    below = Q(name=old) | Q(name__startswith=old + "/")
    moved = list(Subscription.objects.filter(below, account_id=account_id).values_list("name", flat=True))
    if not moved:
        return
    Subscription.objects.filter(below, account_id=account_id).delete()
    _subscribe(account_id, [new + name.removeprefix(old) for name in moved])


@action
def set_subscribed(account: Account, name: str, subscribed: bool) -> bool:
    """Subscribe to a folder name, or drop the subscription; True when that changed the subscriptions. The name
    need not be a folder's (RFC 9051 6.3.7 lets a server accept it; Dovecot does) but must be a valid one."""
    name = normalise_folder_name(name)
    lock(accounts=[account.pk])
    if subscribed:
        return Subscription.objects.get_or_create(account=account, name=name)[1]
    deleted, _ = Subscription.objects.filter(account=account, name=name).delete()
    return bool(deleted)
