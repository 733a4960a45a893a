"""The recycle bin: removed mail is kept for MAILSITE_RETENTION_DAYS outside the quota and out of IMAP/POP3's
sight, restorable with its flags and internal date, then purged with the bodies nothing else refers to."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from imapd import store
from mailboxes import actions
from mailboxes.actions import recycling
from mailboxes.models import Account, Mailbox, Message, MessageBody, RecycledMessage, Role
from tests.conftest import PASSWORD


def _raw(subject: str) -> bytes:
    return (
        f"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode()
    )


@pytest.fixture
def alice(make_account) -> Account:
    return make_account("alice@example.com", quota_bytes=10**6)


def _used(account: Account) -> int:
    return Account.objects.get(pk=account.pk).used_bytes


def test_expunged_mail_is_kept_outside_the_quota_and_restored_with_its_flags(alice):
    actions.create_mailbox(alice, "Projects")
    projects = Mailbox.objects.get(account=alice, name="Projects")
    actions.append(alice, projects.pk, _raw("plan"), flags=["\\Flagged", "$Important"])
    message = Message.objects.get(mailbox=projects)
    received = message.internal_date
    actions.set_flags(alice, projects.pk, [message.uid], ["\\Deleted"], actions.FlagMode.ADD)

    assert actions.expunge(alice, projects.pk) == [message.uid]
    assert _used(alice) == 0
    assert not Message.objects.exists()
    snapshot = store.open_mailbox(alice.pk, "Projects", readonly=True)
    assert snapshot is not None
    assert len(snapshot.uids) == 0
    [kept] = RecycledMessage.objects.all()
    assert (kept.folder_name, kept.subject) == ("Projects", "plan")
    assert MessageBody.objects.count() == 1

    [restored] = actions.restore(alice, [kept.pk])
    assert restored.mailbox_id == projects.pk
    assert restored.uid > message.uid, "a new UID: the old one may be cached as gone"
    assert (restored.flagged, restored.deleted, restored.keyword_list) == (True, True, ["$Important"])
    assert restored.internal_date == received
    assert _used(alice) == restored.size
    assert not RecycledMessage.objects.exists()


def test_pop3_dele_and_a_deleted_folder_are_recycled_and_restore_goes_to_the_inbox(alice):
    actions.deliver(_raw("one"), "carol@remote.test", [alice.address])
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    actions.delete_messages(alice, inbox.pk, [Message.objects.get().uid])  # POP3 DELE at QUIT
    actions.create_mailbox(alice, "Old")
    old = Mailbox.objects.get(account=alice, name="Old")
    actions.append(alice, old.pk, _raw("two"))
    actions.delete_mailbox(alice, old.pk)
    assert sorted(RecycledMessage.objects.values_list("folder_name", flat=True)) == ["INBOX", "Old"]

    actions.restore(alice, list(RecycledMessage.objects.values_list("pk", flat=True)))
    assert sorted(Message.objects.filter(mailbox=inbox).values_list("subject", flat=True)) == ["one", "two"]


def test_restore_refuses_what_does_not_fit_and_what_is_someone_elses(alice, make_account):
    bob = make_account("bob@example.com")
    actions.deliver(_raw("big"), "carol@remote.test", [alice.address])
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    actions.delete_messages(alice, inbox.pk, [Message.objects.get().uid])
    kept = RecycledMessage.objects.get()
    with pytest.raises(actions.NotFound):
        actions.restore(bob, [kept.pk])
    Account.objects.filter(pk=alice.pk).update(quota_bytes=1)
    with pytest.raises(actions.OverQuota):
        actions.restore(alice, [kept.pk])
    assert RecycledMessage.objects.filter(pk=kept.pk).exists()


def test_purge_drops_old_mail_and_only_unshared_bodies(alice, make_account):
    make_account("bob@example.com")
    actions.deliver(_raw("shared"), "carol@remote.test", [alice.address, "bob@example.com"])
    actions.deliver(_raw("own"), "carol@remote.test", [alice.address])
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    actions.delete_messages(alice, inbox.pk, list(Message.objects.filter(mailbox=inbox).values_list("uid", flat=True)))
    assert MessageBody.objects.count() == 2
    assert actions.purge_recycled() == 0, "nothing is older than the retention yet"
    RecycledMessage.objects.update(removed=timezone.now() - datetime.timedelta(days=15))

    assert actions.purge_recycled() == 2
    assert not RecycledMessage.objects.exists()
    assert list(MessageBody.objects.values_list("pk", flat=True)) == [
        Message.objects.get(account__address="bob@example.com").body_id
    ]


def test_a_retention_of_zero_keeps_nothing(alice, settings):
    settings.MAILSITE_RETENTION_DAYS = 0
    actions.deliver(_raw("gone"), "carol@remote.test", [alice.address])
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    actions.delete_messages(alice, inbox.pk, [Message.objects.get().uid])
    assert not RecycledMessage.objects.exists()
    assert not MessageBody.objects.exists()
    assert recycling.purge_recycled() == 0


def test_an_admin_restores_from_the_recycle_bin(client, alice, make_account):
    make_account("admin@admins.example", is_staff=True, is_superuser=True)
    assert client.login(username="admin@admins.example", password=PASSWORD)
    actions.deliver(_raw("lost"), "carol@remote.test", [alice.address])
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    actions.delete_messages(alice, inbox.pk, [Message.objects.get().uid])
    kept = RecycledMessage.objects.get()
    assert "lost" in client.get("/admin/mailboxes/recycledmessage/").content.decode()

    client.post("/admin/mailboxes/recycledmessage/", {"action": "restore", "_selected_action": [kept.pk]})
    assert Message.objects.get(mailbox=inbox).subject == "lost"
