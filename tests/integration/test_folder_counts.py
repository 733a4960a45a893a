"""Each folder's counts (messages, unseen, \\Deleted, their sizes: what IMAP STATUS and SELECT report) are kept in
its row by the actions: after every step of a random mix of every writer of the store they equal a recount."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum

from mailboxes import actions
from mailboxes.actions import importing
from mailboxes.models import Account, Mailbox, Message, RecycledMessage, Role
from sieve import scripts

pytestmark = pytest.mark.django_db

# Bob's script files some mail into Archive already seen, some into Junk flagged \Deleted, and keeps a copy of
# some in the Inbox: deliveries to several folders, with flags set before the copies are stored.
RULES = """require ["fileinto", "imap4flags", "copy"];
if header :contains "subject" "file" { fileinto :flags "\\\\Seen" "Archive"; stop; }
if header :contains "subject" "junk" { fileinto :copy :flags "\\\\Deleted" "Junk"; }
"""
FLAGS = ["\\Seen", "\\Deleted", "\\Flagged", "$Work"]


def recount() -> dict[int, tuple[int, int, int, int, int]]:
    counted = {
        row["mailbox_id"]: (row["n"], row["n_unseen"], row["n_deleted"], row["octets"] or 0, row["deleted_octets"] or 0)
        for row in Message.objects.order_by()
        .values("mailbox_id")
        .annotate(
            n=Count("id"),
            n_unseen=Count("id", filter=Q(seen=False)),
            n_deleted=Count("id", filter=Q(deleted=True)),
            octets=Sum("size"),
            deleted_octets=Sum("size", filter=Q(deleted=True)),
        )
    }
    return {pk: counted.get(pk, (0, 0, 0, 0, 0)) for pk in Mailbox.objects.values_list("pk", flat=True)}


def stored() -> dict[int, tuple[int, int, int, int, int]]:
    columns = ("message_count", "unseen_count", "deleted_count", "total_size", "deleted_size")
    return {row[0]: tuple(row[1:]) for row in Mailbox.objects.values_list("pk", *columns)}


def raw(rng: random.Random, subject: str, to: str = "alice@example.com") -> bytes:
    filler = "x" * rng.randrange(0, 3000)
    number = rng.randrange(10**9)
    return (
        f"From: someone@remote.test\r\nTo: {to}\r\nSubject: {subject} {number}\r\n"
        f"Message-ID: <{number}@remote.test>\r\n\r\nbody {filler}\r\n"
    ).encode()


class Mix:
    """The writers, each a step on random folders and messages of three accounts."""

    def __init__(self, rng: random.Random, accounts: list[Account]) -> None:
        self.rng = rng
        self.accounts = accounts

    def account(self) -> Account:
        return self.rng.choice(self.accounts)

    def folder(self, account: Account) -> int:
        return self.rng.choice(list(Mailbox.objects.filter(account=account).values_list("pk", flat=True)))

    def uids(self, folder: int) -> list[int]:
        present = list(Message.objects.filter(mailbox_id=folder).values_list("uid", flat=True))
        return [*self.rng.sample(present, self.rng.randint(0, len(present))), 10**6]  # and one that is not there

    def deliver(self) -> None:
        to = self.rng.sample([a.address for a in self.accounts], self.rng.randint(1, 3))
        subject = self.rng.choice(["hello", "file this", "junk offer"])
        actions.deliver(raw(self.rng, subject), "someone@remote.test", to)

    def deliver_many(self) -> None:
        # To one account: near its limit, each message fits at RCPT but not all of them together at DATA.
        to = [self.account().address]
        group = [
            (raw(self.rng, self.rng.choice(["hi", "file", "junk"])), "s@remote.test", to)
            for _ in range(self.rng.randint(2, 4))
        ]
        actions.deliver_many(group)

    def append(self) -> None:
        account = self.account()
        flags = self.rng.sample(FLAGS, self.rng.randint(0, 3))
        with contextlib.suppress(actions.OverQuota):
            actions.append(account, self.folder(account), raw(self.rng, "appended"), flags=flags)

    def copy_or_move(self) -> None:
        account = self.account()
        source, target = self.folder(account), self.folder(account)
        with contextlib.suppress(actions.OverQuota):
            (actions.move if self.rng.random() < 0.5 else actions.copy)(account, source, self.uids(source), target)

    def set_flags(self) -> None:
        account = self.account()
        folder = self.folder(account)
        flags = self.rng.sample(FLAGS, self.rng.randint(0, 3))
        mode = self.rng.choice(list(actions.FlagMode))
        actions.set_flags(account, folder, self.uids(folder), flags, mode)

    def expunge(self) -> None:
        account = self.account()
        folder = self.folder(account)
        actions.expunge(account, folder, None if self.rng.random() < 0.5 else self.uids(folder))

    def delete_messages(self) -> None:
        account = self.account()
        folder = self.folder(account)
        actions.delete_messages(account, folder, self.uids(folder))

    def folders(self) -> None:
        account = self.account()
        names = list(Mailbox.objects.filter(account=account, role="").values_list("pk", "name"))
        choice = self.rng.random()
        if choice < 0.4 or not names:
            with contextlib.suppress(actions.AlreadyExists):
                actions.create_mailbox(account, f"f{self.rng.randrange(1000)}")
            return
        pk, _name = self.rng.choice(names)
        try:
            if choice < 0.7:
                actions.delete_mailbox(account, pk)
            elif choice < 0.9:
                actions.rename_mailbox(account, pk, f"r{self.rng.randrange(1000)}")
            else:  # the Inbox's messages go into a new folder
                actions.rename_mailbox(
                    account, account.mailboxes.get(role=Role.INBOX).pk, f"i{self.rng.randrange(1000)}"
                )
        except (actions.AlreadyExists, actions.HasChildren):
            pass

    def restore(self) -> None:
        account = self.account()
        recycled = list(RecycledMessage.objects.filter(account=account).values_list("pk", flat=True))
        if recycled:
            with contextlib.suppress(actions.OverQuota):
                actions.restore(account, self.rng.sample(recycled, self.rng.randint(1, len(recycled))))

    def import_(self) -> None:
        account = self.account()
        incoming = [
            importing.Incoming(raw(self.rng, "imported"), flags=self.rng.sample(FLAGS, self.rng.randint(0, 2)))
            for _ in range(self.rng.randint(1, 4))
        ]
        importing.import_messages(account, self.folder(account), incoming)

    def draft(self) -> None:
        account = self.account()
        drafts = account.mailboxes.get(role=Role.DRAFTS).pk
        previous = Message.objects.filter(mailbox_id=drafts).values_list("uid", flat=True).first()
        with contextlib.suppress(actions.OverQuota):
            actions.save_draft(
                account,
                raw(self.rng, "draft"),
                drafts_folder=drafts,
                previous=None if previous is None else (drafts, previous),
            )

    def steps(self) -> list[Callable[[], None]]:
        return [
            self.deliver,
            self.deliver_many,
            self.append,
            self.append,
            self.copy_or_move,
            self.set_flags,
            self.set_flags,
            self.expunge,
            self.delete_messages,
            self.folders,
            self.restore,
            self.import_,
            self.draft,
        ]


@pytest.mark.parametrize("seed", range(4))
def test_every_writer_keeps_every_folders_counts_equal_to_a_recount(make_account, seed: int) -> None:
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    scripts.put_script(bob, "rules", RULES, activate=True)
    carol = make_account("carol@example.com")
    actions.update_account(carol, quota_messages=12)  # fills up: copies refused for want of room
    rng = random.Random(seed)
    mix = Mix(rng, [alice, bob, carol])
    done = []
    for _ in range(120):
        step = rng.choice(mix.steps())
        step()
        done.append(step.__name__)
        assert stored() == recount(), f"after {done[-8:]}"
    actions.delete_account(bob)
    assert stored() == recount()
