"""Query counts of the hot paths: a fixed number of statements, whatever the number of messages, so a
regression (a query per message, a lost select_related) fails here before it shows in a benchmark."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imapd import store
from mailboxes import actions
from mailboxes.models import Mailbox, Message, Role
from tests.conftest import PASSWORD


def _fill(address: str, count: int) -> None:
    for number in range(count):
        raw = f"From: carol@remote.test\r\nTo: {address}\r\nSubject: note {number}\r\n\r\nbody {number}\r\n"
        actions.deliver(raw.encode(), "carol@remote.test", [address])


def _count(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


@pytest.mark.parametrize("messages", [1, 40])
def test_imap_select(db, make_account, messages):
    alice = make_account("alice@example.com")
    _fill(alice.address, messages)
    snapshot = None

    def select() -> None:
        nonlocal snapshot
        snapshot = store.open_mailbox(alice.pk, "INBOX", readonly=False)

    assert _count(select) <= SELECT
    assert snapshot is not None


@pytest.mark.parametrize("messages", [1, 40])
def test_imap_store(db, make_account, messages):
    alice = make_account("alice@example.com")
    _fill(alice.address, messages)
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    with CaptureQueriesContext(connection) as queries:
        stored = store.store(alice, inbox.pk, [(1, messages)], messages, ["\\Seen"], "add")
    # The folder's lock, the read of the set under it and one write: the FETCH replies need no read of their own.
    assert len([q for q in queries if "SAVEPOINT" not in q["sql"]]) == STORE
    assert [(uid, flags) for uid, _, flags in stored.messages] == [(n, ["\\Seen"]) for n in range(1, messages + 1)]
    assert stored.changed == set(range(1, messages + 1))
    assert {modseq for _, modseq, _ in stored.messages} == {Mailbox.objects.get(pk=inbox.pk).highestmodseq}


@pytest.mark.parametrize("messages", [1, 40])
def test_webmail_list_and_message_pages(client, make_account, messages):
    alice = make_account("alice@example.com")
    _fill(alice.address, messages)
    assert client.login(username=alice.address, password=PASSWORD)
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    message = Message.objects.filter(mailbox=inbox).latest("uid")
    folder_page, message_page = (
        reverse("webmail:folder", args=[inbox.pk]),
        reverse("webmail:message", args=[message.pk]),
    )
    assert client.get(folder_page).status_code == 200

    listed = _count(lambda: client.get(folder_page))
    read = _count(lambda: client.get(message_page))
    assert listed <= LIST_PAGE
    assert read <= MESSAGE_PAGE


SELECT = 9  # the snapshot, shared \Recent, HIGHESTMODSEQ and the first unseen
STORE = 3
LIST_PAGE = 7
MESSAGE_PAGE = 16


def test_imap_store_of_overlapping_ranges_changes_each_message_once(db, make_account):
    alice = make_account("alice@example.com")
    _fill(alice.address, 8)
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    # A set such as 3:1,2:5,8 (RFC 3501 9: ranges in any order, overlapping), of a session that knows UIDs up to 6.
    stored = store.store(alice, inbox.pk, [(1, 3), (2, 5), (8, 8), (5, 5)], 6, ["\\Flagged", "$Work"], "add")
    assert [uid for uid, _, _ in stored.messages] == [1, 2, 3, 4, 5]
    assert stored.changed == {1, 2, 3, 4, 5}
    assert {uid: flags for uid, _, flags in stored.messages}[4] == ["\\Flagged", "$Work"]
    flagged = Message.objects.filter(mailbox=inbox, flagged=True).values_list("uid", flat=True)
    assert sorted(flagged) == [1, 2, 3, 4, 5]
    assert Mailbox.objects.get(pk=inbox.pk).highestmodseq == max(modseq for _, modseq, _ in stored.messages)
