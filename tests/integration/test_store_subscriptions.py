"""IMAP subscriptions as names apart from folders: what the folder actions do to them, the account's delete, and
the migration that made them out of each folder's former flag."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from mailboxes import actions
from mailboxes.models import Account, Mailbox, Role, Subscription

STANDARD = {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}


def subscribed(account: Account) -> set[str]:
    return set(Subscription.objects.filter(account=account).values_list("name", flat=True))


def test_new_folders_are_subscribed_and_an_unsubscribed_parent_stays_so(db, make_account) -> None:
    alice = make_account("alice@example.com")
    assert subscribed(alice) == STANDARD
    actions.create_mailbox(alice, "Work")
    assert actions.set_subscribed(alice, "Work", False)
    actions.create_mailbox(alice, "Work/2026/Q1")
    assert subscribed(alice) == STANDARD | {"Work/2026", "Work/2026/Q1"}


def test_a_name_with_no_folder_is_subscribed_and_outlives_a_deleted_folder(db, make_account) -> None:
    alice = make_account("alice@example.com")
    assert actions.set_subscribed(alice, "Lists/Python", True)
    assert not actions.set_subscribed(alice, "Lists/Python", True)  # subscribed already: no change
    assert not Mailbox.objects.filter(account=alice, name__startswith="Lists").exists()
    with pytest.raises(actions.InvalidName):
        actions.set_subscribed(alice, "Lists/*", True)
    # Creating the folder finds its name subscribed already; deleting it keeps the subscription (RFC 9051 6.3.7).
    folder = actions.create_mailbox(alice, "Lists/Python")
    actions.delete_mailbox(alice, folder.pk)
    assert {"Lists", "Lists/Python"} <= subscribed(alice)
    assert actions.set_subscribed(alice, "Lists/Python", False)
    assert not actions.set_subscribed(alice, "Lists/Python", False)


def test_rename_takes_the_subscriptions_of_the_folder_and_of_the_names_below_it(db, make_account) -> None:
    alice = make_account("alice@example.com")
    actions.create_mailbox(alice, "Work/Old")
    actions.create_mailbox(alice, "Workshop")
    actions.set_subscribed(alice, "Work/Gone", True)  # no folder
    actions.set_subscribed(alice, "Work/Old", False)
    actions.set_subscribed(alice, "Job", True)  # subscribed before the folder comes: one subscription after
    work = Mailbox.objects.get(account=alice, name="Work")
    actions.rename_mailbox(alice, work.pk, "Archive/Job")
    assert subscribed(alice) - STANDARD == {"Archive/Job", "Archive/Job/Gone", "Job", "Workshop"}
    actions.rename_mailbox(alice, work.pk, "Job")
    assert subscribed(alice) - STANDARD == {"Job", "Job/Gone", "Workshop"}
    assert set(Mailbox.objects.filter(account=alice).values_list("name", flat=True)) - STANDARD == {
        "Job",
        "Job/Old",
        "Workshop",
    }


def test_renaming_the_inbox_keeps_its_subscription_and_subscribes_the_new_folder(db, make_account) -> None:
    alice = make_account("alice@example.com")
    actions.set_subscribed(alice, "Old", False)
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    actions.rename_mailbox(alice, inbox.pk, "Old/Inbox 2026")
    assert subscribed(alice) == STANDARD | {"Old", "Old/Inbox 2026"}


def test_deleting_an_account_deletes_its_subscriptions(db, make_account) -> None:
    alice, bob = make_account("alice@example.com"), make_account("bob@example.com")
    actions.set_subscribed(alice, "Gone", True)
    actions.delete_account(alice)
    assert not Subscription.objects.filter(account_id=alice.pk).exists()
    assert subscribed(bob) == STANDARD


BEFORE = [("mailboxes", "0018_account_message_count")]
AFTER = [("mailboxes", "0019_subscriptions")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_every_subscribed_folder_over(make_account) -> None:
    alice, bob = make_account("alice@example.com"), make_account("bob@example.com")
    actions.create_mailbox(alice, "Work/Old")
    actions.set_subscribed(alice, "Work/Old", False)
    actions.set_subscribed(bob, "Lists", True)  # a name with no folder: lost on the way back
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        # Back at the flag: a folder is subscribed when its name was.
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps.get_model("mailboxes", "Mailbox")
        flags = dict(old.objects.filter(account_id=alice.pk).values_list("name", "subscribed"))
        assert flags == {**dict.fromkeys(STANDARD, True), "Work": True, "Work/Old": False}
        assert set(old.objects.filter(account_id=bob.pk, subscribed=True).values_list("name", flat=True)) == STANDARD
        # Folders as they were before: the Trash unsubscribed by one, the Sent by the other.
        old.objects.filter(account_id=alice.pk, name="Trash").update(subscribed=False)
        old.objects.filter(account_id=bob.pk, name="Sent").update(subscribed=False)
        MigrationExecutor(connection).migrate(AFTER)
    finally:
        MigrationExecutor(connection).migrate(leaves)
    assert subscribed(alice) == STANDARD - {"Trash"} | {"Work"}
    assert subscribed(bob) == STANDARD - {"Sent"}
