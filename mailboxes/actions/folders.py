"""Folders: create (with parents), delete, rename (with subfolders) and subscribe."""

from __future__ import annotations

import unicodedata

from django.db.models import Q

from mailboxes import changes
from mailboxes.actions import counters
from mailboxes.actions.errors import AlreadyExists, HasChildren, InvalidName, NotFound
from mailboxes.actions.locks import action, lock
from mailboxes.actions.messages import move, remove
from mailboxes.models import Account, Mailbox, Message, Role

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
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        created, _ = Mailbox.objects.get_or_create(account=account, name=path)
    assert created is not None
    if role:
        created.role = role
        created.save(update_fields=["role"])
    return created


@action
def claim_recent(mailbox_id: int, up_to: int | None) -> int:
    """\\Recent (RFC 3501 2.3.2) shared by every IMAP process: the caller takes the folder's messages from
    the returned UID on (below `up_to`, or all when None), and no later caller gets them again."""
    lock(folders=[mailbox_id])
    row = Mailbox.objects.filter(pk=mailbox_id).values_list("first_recent_uid", "uidnext").first()
    if row is None:
        raise NotFound("the folder no longer exists")
    first, uidnext = row
    mark = max(first, uidnext if up_to is None else min(up_to, uidnext))
    if mark != first:
        Mailbox.objects.filter(pk=mailbox_id).update(first_recent_uid=mark)
    return first


def _own(account: Account, mailbox_id: int) -> Mailbox:
    mailbox = Mailbox.objects.filter(account=account, pk=mailbox_id).first()
    if mailbox is None:
        raise NotFound("no such folder")
    return mailbox


@action
def delete_mailbox(account: Account, mailbox_id: int) -> None:
    """Delete a folder and its messages; the Inbox and folders with subfolders cannot be deleted."""
    mailbox = _own(account, mailbox_id)
    lock(folders=[mailbox.pk], accounts=[account.pk])
    if mailbox.role == Role.INBOX:
        raise InvalidName("the Inbox cannot be deleted")
    if Mailbox.objects.filter(account=account, name__startswith=mailbox.name + "/").exists():
        raise HasChildren("the folder has subfolders; delete them first")
    remove(account.pk, Q(mailbox_id=mailbox.pk))
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
    parent = new_name.rpartition("/")[0]
    if parent:
        for depth in range(1, parent.count("/") + 2):
            Mailbox.objects.get_or_create(account=account, name="/".join(parent.split("/")[:depth]))
    if mailbox.role == Role.INBOX:
        target = Mailbox.objects.create(account=account, name=new_name)
        uids = list(Message.objects.filter(mailbox=mailbox).values_list("uid", flat=True))
        move(account, mailbox.pk, uids, target.pk)
        return target
    for child in children:
        child.name = new_name + "/" + child.name.removeprefix(old_prefix)
        child.save(update_fields=["name"])
    mailbox.name = new_name
    mailbox.save(update_fields=["name"])
    changes.notify(account.pk, mailbox.pk)
    return mailbox


@action
def set_subscribed(account: Account, name: str, subscribed: bool) -> None:
    updated = Mailbox.objects.filter(account=account, name=normalise_folder_name(name)).update(subscribed=subscribed)
    if not updated:
        raise NotFound("no such folder")
