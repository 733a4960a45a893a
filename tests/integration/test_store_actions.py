"""The store's actions: the lock order as a mechanism, internationalised domains, deletes that leave nothing
behind, the relay's housekeeping, and query counts on the hot paths."""

from __future__ import annotations

import datetime
import importlib
import unicodedata

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailboxes import actions
from mailboxes.actions import locks, outbound, queueing
from mailboxes.actions.folders import claim_recent
from mailboxes.models import (
    Account,
    Alias,
    Domain,
    ExpungedMessage,
    Mailbox,
    Message,
    MessageBody,
    RecentMark,
    RecycledMessage,
    Role,
    Subscription,
)
from relay.models import Attempt, OutboundMessage, OutboundRecipient, State
from tests.conftest import PASSWORD


@pytest.fixture
def admin_client(client, make_account):
    make_account("admin@admins.example", is_staff=True, is_superuser=True)
    assert client.login(username="admin@admins.example", password=PASSWORD)
    return client


def raw(subject: str = "hello", to: str = "bob@example.com") -> bytes:
    return f"From: carol@remote.test\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


# --- Lock order -------------------------------------------------------------------------------------------------


@locks.action
def _folder_after_account(account: Account) -> None:
    locks.lock(accounts=[account.pk])
    locks.lock(folders=[Mailbox.objects.get(account=account, role=Role.SENT).pk])


@locks.action
def _descending_folders(account: Account) -> None:
    inbox, sent = (Mailbox.objects.get(account=account, role=role).pk for role in (Role.INBOX, Role.SENT))
    locks.lock(folders=[max(inbox, sent)])
    locks.lock(folders=[min(inbox, sent)])


@locks.action
def _inbox_again_after_account(account: Account) -> int:
    first = locks.lock(inboxes_of=[account.pk], accounts=[account.pk])
    again = locks.lock(inboxes_of=[account.pk], accounts=[account.pk])  # held already: free
    assert again.inboxes == first.inboxes
    return first.inboxes[account.pk]


def test_a_lock_out_of_order_is_refused(db, make_account):
    alice = make_account("alice@example.com")
    with pytest.raises(locks.LockOrderError):
        _folder_after_account(alice)
    with pytest.raises(locks.LockOrderError):
        _descending_folders(alice)
    assert _inbox_again_after_account(alice) == Mailbox.objects.get(account=alice, role=Role.INBOX).pk
    with pytest.raises(locks.LockOrderError):
        locks.lock(accounts=[alice.pk])  # outside an action


# --- Internationalised domains -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "addressed"), [("bücher.test", "xn--bcher-kva.test"), ("xn--bcher-kva.test", "bücher.test")]
)
def test_a_domain_is_the_same_in_either_form(db, created, addressed):
    domain = actions.create_domain(created)
    assert domain.name == "xn--bcher-kva.test"
    assert str(domain) == "bücher.test"
    account = actions.create_account(f"ute@{addressed}", PASSWORD)
    assert account.address == "ute@xn--bcher-kva.test"
    for form in (created, addressed, "BÜCHER.test"):
        assert actions.resolve_recipient(f"ute@{form}").status is actions.RecipientStatus.LOCAL
        assert actions.is_local_domain(form)
    with pytest.raises(actions.AlreadyExists):
        actions.create_domain(addressed)
    report = actions.submit(raw(to=f"ute@{addressed}"), "ute@xn--bcher-kva.test", [f"ute@{addressed}"])
    assert report.results == {f"ute@{addressed}": actions.RecipientStatus.LOCAL}
    assert not OutboundMessage.objects.exists()


def test_a_domain_rename_keeps_its_accounts_working(db, make_account):
    alice = make_account("alice@old.example")
    actions.update_domain(alice.domain, name="new.example", active=True)
    alice.refresh_from_db()
    assert alice.address == "alice@new.example"
    assert actions.authenticate("alice@new.example", PASSWORD, remote_ip=None, protocol="imap").ok
    assert actions.resolve_recipient("alice@new.example").account_ids == (alice.pk,)


# --- Deletes ---------------------------------------------------------------------------------------------------


def _counts(account_ids: list[int]) -> tuple[int, int, int]:
    return (
        Message.objects.filter(account_id__in=account_ids).count(),
        Mailbox.objects.filter(account_id__in=account_ids).count(),
        Account.objects.filter(pk__in=account_ids).count(),
    )


def test_admin_deletes_an_account_with_everything_of_its_own(admin_client, make_account):
    alice, bob = make_account("alice@example.com", quota_bytes=10**6), make_account("bob@example.com")
    shared = actions.deliver(raw(), "carol@remote.test", ["alice@example.com", "bob@example.com"])
    actions.deliver(raw("alone"), "carol@remote.test", ["alice@example.com"])
    actions.create_mailbox(alice, "Projects/2026")
    actions.create_alias("team@example.com", ["alice@example.com", "bob@example.com"])
    actions.create_alias("solo@example.com", ["alice@example.com"])
    bodies = MessageBody.objects.count()
    assert bodies == 2

    response = admin_client.post(f"/admin/mailboxes/account/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert _counts([alice.pk]) == (0, 0, 0)
    assert MessageBody.objects.count() == 1, "the body bob shares is kept, alice's own is gone"
    assert Message.objects.get(account=bob).pk in shared.message_ids
    assert Alias.objects.get(local_part="team").destination_list == ["bob@example.com"]
    assert not Alias.objects.filter(local_part="solo").exists()
    bob.refresh_from_db()
    assert bob.used_bytes == Message.objects.get(account=bob).size


def test_admin_deletes_a_domain_and_refuses_while_its_mail_is_queued(admin_client, make_account):
    alice = make_account("alice@example.com")
    make_account("bob@example.com")
    actions.deliver(raw(), "carol@remote.test", ["alice@example.com", "bob@example.com"])
    actions.create_alias("@example.com", ["bob@example.com"])
    queueing.enqueue(raw(), "alice@example.com", ["zed@remote.test"], author_domain=None)
    domain = Domain.objects.get(name="example.com")
    ids = list(domain.accounts.values_list("pk", flat=True))

    page = admin_client.post(f"/admin/mailboxes/domain/{domain.pk}/delete/", {"post": "yes"}, follow=True)
    assert "still wait for delivery" in page.content.decode()
    assert Domain.objects.filter(pk=domain.pk).exists()
    assert _counts(ids) == (2, 12, 2)

    admin_client.post(
        "/admin/mailboxes/domain/",
        {"action": "delete_even_if_queued", "_selected_action": [domain.pk]},
    )
    assert not Domain.objects.filter(pk=domain.pk).exists()
    assert _counts(ids) == (0, 0, 0)
    assert MessageBody.objects.count() == 0
    assert not Alias.objects.exists()
    assert OutboundRecipient.objects.filter(address="zed@remote.test").exists(), "queued mail still goes out"
    assert alice.pk not in Account.objects.values_list("pk", flat=True)


def test_admin_changes_go_through_actions(admin_client, make_account):
    alice = make_account("alice@example.com")
    response = admin_client.post(
        f"/admin/mailboxes/account/{alice.pk}/password/",
        {"password1": "a new secret 42", "password2": "a new secret 42"},
    )
    assert response.status_code == 302
    assert actions.authenticate("alice@example.com", "a new secret 42", remote_ip=None, protocol="web").ok
    domain = alice.domain
    admin_client.post(f"/admin/mailboxes/domain/{domain.pk}/change/", {"name": "Straße.example", "active": "on"})
    alice.refresh_from_db()
    assert alice.address == "alice@xn--strae-oqa.example"


# --- Housekeeping -------------------------------------------------------------------------------------------------


def test_finished_outbound_mail_is_purged_after_the_keep_period(db, make_account):
    make_account("alice@example.com")
    old = queueing.enqueue(raw(), "alice@example.com", ["a@remote.test", "b@remote.test"], author_domain=None)
    fresh = queueing.enqueue(raw(), "alice@example.com", ["c@remote.test"], author_domain=None)
    long_ago = timezone.now() - datetime.timedelta(days=31)
    OutboundRecipient.objects.filter(message=old, address="a@remote.test").update(
        state=State.DELIVERED, updated=long_ago
    )
    OutboundRecipient.objects.filter(message=old, address="b@remote.test").update(state=State.BOUNCED, updated=long_ago)
    OutboundRecipient.objects.filter(message=fresh).update(state=State.DELIVERED)
    row = OutboundRecipient.objects.get(address="a@remote.test")
    Attempt.objects.create(
        recipient=row, started=long_ago, finished=long_ago, host="mx", code=250, reply="ok", outcome="delivered"
    )

    assert outbound.purge(30 * 86400) == 2
    assert not OutboundMessage.objects.filter(pk=old.pk).exists()
    assert not Attempt.objects.exists()
    assert OutboundRecipient.objects.filter(message=fresh).count() == 1


# --- Query counts on the hot paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(("recipients", "most"), [(1, 8), (20, 10)])
def test_delivery_query_count(db, make_account, recipients, most):
    addresses = [f"user{n}@example.com" for n in range(recipients)]
    for address in addresses:
        make_account(address)
    resolved = {address: actions.resolve_recipient(address) for address in addresses}
    with CaptureQueriesContext(connection) as queries:
        [report] = actions.deliver_many([(raw(), "carol@remote.test", addresses)], resolved)
    assert len(report.message_ids) == recipients
    assert len(queries) <= most, "\n".join(q["sql"][:150] for q in queries)


def test_append_locks_the_folder_only_for_its_writes(db, make_account):
    alice = make_account("alice@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX).pk
    actions.append(alice, inbox, raw("first"))
    with CaptureQueriesContext(connection) as queries:
        appended = actions.append(alice, inbox, raw("Re: first"), flags=["\\Seen"])
    # The test's transaction makes the action's a savepoint: not a statement of the action's own.
    statements = [q["sql"].lstrip() for q in queries if "SAVEPOINT" not in q["sql"]]
    locking = next(
        n
        for n, sql in enumerate(statements)
        if sql.startswith(("UPDATE", "WITH folder AS")) or "FOR NO KEY UPDATE" in sql
    )
    held = statements[locking:]
    # One statement for the folder's UIDs and counts and the account's quota, one INSERT of body and row (the
    # notification is the folder's trigger's).
    assert len(held) <= 2, "\n".join(sql[:150] for sql in held)
    assert not any(sql.startswith("SELECT") and "mailboxes_message" in sql for sql in held), "no message read"
    assert appended.uid == 2
    assert Message.objects.get(pk=appended.pk).body_id == appended.body_id


def test_expunge_reads_the_messages_it_removes_once_and_releases_them_in_one_statement(db, make_account):
    alice = make_account("alice@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX).pk
    for number in range(3):
        actions.append(alice, inbox, raw(f"note {number}"), flags=["\\Deleted"] if number else [])
    with CaptureQueriesContext(connection) as queries:
        assert actions.expunge(alice, inbox) == [2, 3]
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and 'FROM "mailboxes_message"' in q["sql"]]
    assert len(reads) == 1, "\n".join(sql[:150] for sql in reads)  # the delete reads none of them again
    assert not any('"raw"' in q["sql"] for q in queries), "no body's bytes are read"
    # The folder's counts and mod-sequence and the account's quota: one statement (counters.release).
    updates = [q["sql"].lstrip() for q in queries if "UPDATE mailboxes_" in q["sql"]]
    assert len(updates) == 1, "\n".join(sql[:150] for sql in updates)
    assert "mailboxes_account" in updates[0]
    kept = Message.objects.get(mailbox_id=inbox)
    assert kept.uid == 1
    alice.refresh_from_db()
    assert (alice.used_bytes, alice.used_messages) == (kept.size, 1)
    folder = Mailbox.objects.get(pk=inbox)
    assert (folder.message_count, folder.total_size, folder.deleted_count) == (1, kept.size, 0)


def test_expunge_deletes_its_messages_and_what_refers_to_them_in_one_statement(db, make_account):
    alice = make_account("alice@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX).pk
    for number in range(3):
        actions.append(alice, inbox, raw(f"note {number}"), flags=["\\Deleted"])
    with CaptureQueriesContext(connection) as queries:
        assert actions.expunge(alice, inbox) == [1, 2, 3]
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    # A look for \Deleted messages, the folder's and the account's locks, the read, and one statement for the
    # counters, the expunge log, the recycle bin and the DELETE with its relations' steps; no look for bodies to
    # drop (the bin refers to every one). There were ten, then seven.
    assert len(statements) == 5, "\n".join(sql[:150] for sql in statements)
    [delete] = [sql for sql in statements if "DELETE FROM" in sql]
    assert "DELETE FROM mailboxes_message" in delete
    assert not Message.objects.filter(mailbox_id=inbox).exists()
    assert list(ExpungedMessage.objects.filter(mailbox_id=inbox).values_list("uid", flat=True).order_by("uid")) == [
        1,
        2,
        3,
    ]
    assert {m.modseq for m in ExpungedMessage.objects.filter(mailbox_id=inbox)} == {
        Mailbox.objects.get(pk=inbox).highestmodseq
    }
    assert RecycledMessage.objects.filter(account=alice).count() == 3
    folder = Mailbox.objects.get(pk=inbox)
    alice.refresh_from_db()
    assert (folder.message_count, folder.deleted_count, folder.total_size, alice.used_messages) == (0, 0, 0, 0)


def test_an_expunge_with_nothing_to_remove_takes_no_lock(db, make_account):
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX).pk
    actions.append(alice, inbox, raw("kept"))
    actions.append(alice, inbox, raw("flagged"), flags=["\\Deleted"])
    for uids in ([1], [1, 7]):  # UID EXPUNGE of messages none of which is \Deleted
        with CaptureQueriesContext(connection) as queries:
            assert actions.expunge(alice, inbox, uids) == []
        assert len(queries) == 1, "one look: no transaction, no lock"
    # Another account's folder is no folder: refused as before, not answered "nothing to remove".
    with pytest.raises(actions.NotFound):
        actions.expunge(bob, inbox, [2])
    assert actions.expunge(alice, inbox) == [2]
    with CaptureQueriesContext(connection) as queries:
        assert actions.expunge(alice, inbox) == []
    assert len(queries) == 1


def test_expunge_finds_the_deleted_messages_without_reading_the_folder(db, make_account):
    """EXPUNGE holds the folder's lock while it looks for what to remove: the partial index of \\Deleted messages
    (migration 0024) finds them, where the folder's other indexes would read every message of it."""
    alice = make_account("alice@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX).pk
    actions.deliver_many([(raw(f"note {n}", alice.address), "carol@remote.test", [alice.address]) for n in range(500)])
    actions.set_flags(alice, inbox, [7], ["\\Deleted"], actions.FlagMode.ADD)
    chosen = Message.objects.filter(deleted=True, mailbox_id=inbox).order_by()  # what expunge() removes
    sql, params = chosen.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mailboxes_message")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "message_deleted" in plan, plan
    assert actions.expunge(alice, inbox) == [7]


def test_a_select_takes_the_recent_messages_in_one_statement(db, make_account):
    alice = make_account("alice@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX).pk
    for number in range(2):
        actions.deliver(raw(f"note {number}", alice.address), "carol@remote.test", [alice.address])
    with CaptureQueriesContext(connection) as queries:
        assert claim_recent(inbox, None) == 1, "the messages from UID 1 on are this caller's"
    assert len([q for q in queries if "SAVEPOINT" not in q["sql"]]) == 1
    assert RecentMark.objects.get(mailbox_id=inbox).first_uid == 3
    assert claim_recent(inbox, None) == 3, "and no later caller's"
    actions.deliver(raw("later", alice.address), "carol@remote.test", [alice.address])
    assert claim_recent(inbox, 3) == 3, "a session knowing UIDs below 3 takes none of the later one"
    assert RecentMark.objects.get(mailbox_id=inbox).first_uid == 3
    assert claim_recent(inbox, 4) == 3
    assert RecentMark.objects.get(mailbox_id=inbox).first_uid == 4


def test_webmail_refuses_a_display_name_that_looks_like_an_address(client, make_account):
    make_account("alice@a.example", display_name="ceo@b.example")
    make_account("ceo@b.example")
    assert client.login(username="alice@a.example", password=PASSWORD)
    response = client.post("/compose/", {"to": "ceo@b.example", "subject": "Hi", "body": "b", "action": "send"})
    assert response.status_code == 400
    assert "display name" in response.content.decode()
    assert not Message.objects.filter(account__address="ceo@b.example").exists()


def test_a_message_with_nul_bytes_is_stored_byte_for_byte(db, make_account):
    alice = make_account("alice@example.com")
    raw = (
        b"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: a\x00b =?utf-8?q?c=00d?=\r\n"
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nbody\x00text\r\n"
        b"--x\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''n%00ul\r\n"
        b"\r\nAAAA\r\n--x--\r\n"
    )
    [message_id] = actions.deliver(raw, "carol@remote.test", [alice.address]).message_ids
    message = Message.objects.select_related("body").get(pk=message_id)
    assert bytes(message.body.raw).endswith(raw)
    assert message.subject == "a\ufffdb c\ufffdd"
    assert "body\ufffdtext" in message.search_text
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    appended = actions.append(alice, inbox.pk, raw)
    assert bytes(appended.body.raw) == raw


# --- Folder names in NFC ----------------------------------------------------------------------------------------


def test_a_folder_name_is_one_folder_in_any_normalisation_form(db, make_account):
    account = make_account("nfc@example.com")
    nfd, nfc = unicodedata.normalize("NFD", "Café/Résumé"), "Café/Résumé"
    created = actions.create_mailbox(account, nfd)
    assert created.name == nfc
    assert Mailbox.objects.filter(account=account, name="Café").exists()  # the parent, in NFC too
    with pytest.raises(actions.AlreadyExists):
        actions.create_mailbox(account, nfc)
    assert actions.set_subscribed(account, nfd, False)
    subscribed = set(Subscription.objects.filter(account=account).values_list("name", flat=True))
    assert "Café" in subscribed
    assert nfc not in subscribed


def test_the_migration_renames_folders_stored_in_another_form(db, make_account):
    migration = importlib.import_module("mailboxes.migrations.0017_folder_names_nfc")
    account = make_account("nfd@example.com")
    nfd = unicodedata.normalize("NFD", "Café")
    # Stored before names were normalised: one folder (with a subfolder) only in NFD, one in both forms.
    for name in (nfd, f"{nfd}/Sub", "Noël", unicodedata.normalize("NFD", "Noël"), "Plain"):
        Mailbox.objects.create(account=account, name=name)
    migration.normalise_names(django_apps, None)
    names = set(Mailbox.objects.filter(account=account).values_list("name", flat=True))
    assert names - {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} == {
        "Café",
        "Café/Sub",
        "Noël",
        "Noël (2)",
        "Plain",
    }
