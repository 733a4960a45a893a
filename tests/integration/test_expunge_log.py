"""The expunge log QRESYNC reads is pruned after MAILSITE_IMAP_EXPUNGE_KEEP: the oldest expunges go, each
folder's horizon rises to the highest mod-sequence it forgot, and the readers then answer from before the
horizon with every missing UID (RFC 7162 3.2.6)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from imapd import store
from mailboxes import actions, tasks
from mailboxes.actions.expunge_log import prune_expunge_log
from mailboxes.models import Account, ExpungedMessage, Mailbox


def _raw(subject: str) -> bytes:
    return f"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


@pytest.fixture
def alice(make_account) -> Account:
    return make_account("alice@example.com")


def _folder(account: Account, name: str, count: int) -> Mailbox:
    actions.create_mailbox(account, name)
    folder = Mailbox.objects.get(account=account, name=name)
    for number in range(count):
        actions.append(account, folder.pk, _raw(f"{name} {number}"))
    return folder


def _expunge(account: Account, folder: Mailbox, uids: list[int]) -> int:
    """Expunge `uids`; returns the folder's mod-sequence just before."""
    before = Mailbox.objects.get(pk=folder.pk).highestmodseq
    actions.set_flags(account, folder.pk, uids, ["\\Deleted"], actions.FlagMode.ADD)
    assert actions.expunge(account, folder.pk) == uids
    return before


def _age(days: int) -> None:
    ExpungedMessage.objects.update(expunged=timezone.now() - datetime.timedelta(days=days))


def test_prune_keeps_recent_expunges_and_raises_each_folders_horizon(alice, settings):
    settings.MAILSITE_IMAP_EXPUNGE_KEEP = 30 * 86400
    work, play = _folder(alice, "Work", 6), _folder(alice, "Play", 3)
    _expunge(alice, work, [1, 2])
    _expunge(alice, play, [3])
    _age(31)
    _expunge(alice, work, [4])  # within the retention: kept
    assert prune_expunge_log() == 3
    assert prune_expunge_log() == 0
    assert list(ExpungedMessage.objects.values_list("mailbox_id", "uid")) == [(work.pk, 4)]
    kept_modseq = ExpungedMessage.objects.get().modseq
    work.refresh_from_db()
    play.refresh_from_db()
    assert 0 < work.expunge_horizon < kept_modseq
    assert play.expunge_horizon == Mailbox.objects.get(pk=play.pk).highestmodseq
    assert Mailbox.objects.get(account=alice, name="INBOX").expunge_horizon == 0


def test_prune_goes_a_batch_at_a_time_and_the_task_until_done(alice):
    folder = _folder(alice, "Work", 5)
    for uid in range(1, 6):
        _expunge(alice, folder, [uid])
    _age(400)
    assert prune_expunge_log(batch=2) == 2
    folder.refresh_from_db()
    # The horizon is the highest forgotten so far; what is left is above it.
    assert folder.expunge_horizon < min(ExpungedMessage.objects.values_list("modseq", flat=True))
    assert tasks.prune_expunge_log() == 3
    assert not ExpungedMessage.objects.exists()


def test_resync_from_before_the_horizon_gets_every_missing_uid(alice):
    folder = _folder(alice, "Work", 10)
    start = Mailbox.objects.get(pk=folder.pk).highestmodseq
    _expunge(alice, folder, [2, 3])
    _age(400)
    assert prune_expunge_log() == 2
    middle = _expunge(alice, folder, [7])

    # From after the horizon: exactly what the log holds.
    assert store.vanished(folder.pk, None, middle) == [(7, 7)]
    # From before it: every UID the folder gave out and no longer has, within the client's ranges if given.
    assert store.vanished(folder.pk, None, start) == [(2, 3), (7, 7)]
    assert store.vanished(folder.pk, [(3, 8)], start) == [(3, 3), (7, 7)]
    assert store.vanished(folder.pk, [(9, 2**32 - 1)], start) == []
    resync = store.Resync(folder.uidvalidity, start, None)
    snapshot = store.open_mailbox(alice.pk, "Work", resync, readonly=True)
    assert snapshot is not None
    assert snapshot.vanished == [(2, 3), (7, 7)]

    # A session that has known the folder since before the horizon learns its gone UIDs all the same.
    found = store.changes_since(folder.pk, start, list(range(1, 11)), take_recent=False)
    assert [uid for uid, _ in found.gone] == [2, 3, 7]
    found = store.changes_since(folder.pk, middle, [1, 4, 5, 6, 7, 8, 9, 10], take_recent=False)
    assert [uid for uid, _ in found.gone] == [7]
