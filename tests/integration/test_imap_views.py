"""SELECT from this process's view of a folder (imapd.views): after every kind of write, the UIDs it answers
with are those a full read of the store gives, and an unchanged folder costs no read of its UIDs."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imapd import store, views
from imapd.session import Selected
from mailboxes import actions
from mailboxes.models import Account, ExpungedMessage, Mailbox, Message, RecycledMessage, Role


def _raw(subject: str) -> bytes:
    return f"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


@pytest.fixture(autouse=True)
def fresh_views() -> Iterator[None]:
    views.forget_all()
    yield
    views.forget_all()


@pytest.fixture
def alice(make_account) -> Account:
    return make_account("alice@example.com")


def _stored(folder: Mailbox) -> tuple[list[int], list[str], int | None]:
    """What a SELECT must say of the folder, read from its messages: UIDs, keywords, first unseen UID."""
    rows = list(Message.objects.filter(mailbox=folder).order_by("uid").values_list("uid", "keywords", "seen"))
    keywords = sorted({keyword for _, words, _ in rows for keyword in words.split()})
    return [uid for uid, _, _ in rows], keywords, next((uid for uid, _, seen in rows if not seen), None)


def _selected(account: Account, name: str) -> tuple[list[int], list[str], int | None]:
    snapshot = store.open_mailbox(account.pk, name, readonly=True)
    assert snapshot is not None
    return list(snapshot.uids), snapshot.keywords, snapshot.first_unseen_uid


def test_select_follows_every_kind_of_write(alice):
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    actions.create_mailbox(alice, "Work")
    work = Mailbox.objects.get(account=alice, name="Work")
    for number in range(6):
        actions.deliver(_raw(f"note {number}"), "carol@remote.test", [alice.address])
    actions.append(alice, work.pk, _raw("filed"))
    assert _selected(alice, "INBOX") == _stored(inbox) == ([1, 2, 3, 4, 5, 6], [], 1)

    def expunge(uids: list[int]) -> None:
        actions.set_flags(alice, inbox.pk, uids, ["\\Deleted"], actions.FlagMode.ADD)
        actions.expunge(alice, inbox.pk, uids)

    writes: list[Callable[[], object]] = [
        lambda: actions.deliver(_raw("later"), "carol@remote.test", [alice.address]),
        lambda: actions.append(alice, inbox.pk, _raw("appended")),
        lambda: actions.set_flags(alice, inbox.pk, [1, 2], ["\\Seen", "$Work"], actions.FlagMode.ADD),
        lambda: expunge([2]),
        lambda: actions.move(alice, inbox.pk, [3, 5], work.pk),
        lambda: actions.move(alice, work.pk, [1], inbox.pk),
        lambda: actions.copy(alice, work.pk, [2], inbox.pk),
        lambda: actions.delete_messages(alice, inbox.pk, [1, 4]),  # POP3 DELE at QUIT
        lambda: actions.restore(alice, list(RecycledMessage.objects.values_list("id", flat=True))),
        lambda: actions.set_flags(alice, inbox.pk, [1, 3, 4], ["$Work"], actions.FlagMode.REMOVE),
        lambda: expunge([]),  # nothing flagged: the mod-sequence moves, nothing goes
    ]
    for write in writes:
        write()
        assert _selected(alice, "INBOX") == _stored(inbox)
        assert _selected(alice, "Work") == _stored(work)


def test_an_unchanged_folder_is_selected_without_reading_its_uids(alice):
    for number in range(5):
        actions.deliver(_raw(f"note {number}"), "carol@remote.test", [alice.address])
    first = store.open_mailbox(alice.pk, "INBOX", readonly=False)
    with CaptureQueriesContext(connection) as queries:
        again = store.open_mailbox(alice.pk, "INBOX", readonly=False)
    assert first is not None
    assert again is not None
    assert list(again.uids) == list(first.uids) == [1, 2, 3, 4, 5]
    # The folder row only: no \\Recent claim (none is left to take), the rest as kept at its mod-sequence.
    assert len(queries) == 1
    assert again.first_recent_uid == 6


def test_select_after_the_expunge_log_was_pruned_past_the_view(alice):
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    for number in range(4):
        actions.deliver(_raw(f"note {number}"), "carol@remote.test", [alice.address])
    assert _selected(alice, "INBOX")[0] == [1, 2, 3, 4]
    actions.set_flags(alice, inbox.pk, [2, 3], ["\\Deleted"], actions.FlagMode.ADD)
    actions.expunge(alice, inbox.pk)
    # As the hourly pruning leaves it: the log forgot those expunges, the horizon says so.
    inbox.refresh_from_db()
    Mailbox.objects.filter(pk=inbox.pk).update(expunge_horizon=inbox.highestmodseq)
    ExpungedMessage.objects.filter(mailbox=inbox).delete()
    assert _selected(alice, "INBOX") == _stored(inbox)
    assert _stored(inbox)[0] == [1, 4]


@pytest.mark.parametrize("count", [0, 1, 3, 64, 65, 400])
def test_uids_less_the_gone_ones_whether_few_or_many(count):
    uids = array("I", range(1, 2001, 2))  # odd UIDs, ascending
    gone = set(range(1, 4 * count + 1, 4)) | {2, 4000}  # some of them, and two that were never there
    expected = [uid for uid in uids if uid not in gone]
    assert list(views.without(uids, gone)) == expected


def test_sessions_on_one_folder_share_its_uids_until_one_changes_them(alice):
    """A thousand IDLE sessions on one folder hold one array of its UIDs, and one more once they see the same new
    messages; a session's own change works on a copy, which neither the other sessions nor the next SELECT see."""
    for number in range(3):
        actions.deliver(_raw(f"note {number}"), "carol@remote.test", [alice.address])
    first = store.open_mailbox(alice.pk, "INBOX", readonly=True)
    second = store.open_mailbox(alice.pk, "INBOX", readonly=True)
    assert first is not None
    assert second is not None
    assert first.uids is second.uids
    sessions = [Selected(first.mailbox_id, "INBOX", True, 1, 1, snapshot.uids) for snapshot in (first, second)]
    sessions[0].own_uids().extend([4])
    del sessions[1].own_uids()[0]
    assert (list(sessions[0].uids), list(sessions[1].uids), list(first.uids)) == ([1, 2, 3, 4], [2, 3], [1, 2, 3])
    again = store.open_mailbox(alice.pk, "INBOX", readonly=True)
    assert again is not None
    assert list(again.uids) == [1, 2, 3]
    # New messages seen by the sessions that share the view: one grown array for all of them.
    changes = store.Changes(highestmodseq=9, new=[4, 5])
    grown = [changes.grown(snapshot.uids) for snapshot in (first, second, again)]
    assert grown[0] is grown[1] is grown[2]
    assert (list(grown[0]), list(first.uids)) == ([1, 2, 3, 4, 5], [1, 2, 3])
