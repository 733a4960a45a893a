"""Actions on every message of a big folder: on PostgreSQL no statement carries a parameter per message (it takes
at most 65,535 in a statement, and a STORE, MOVE, EXPUNGE or DELETE of 100,000 messages failed), and the
answers are those of the same actions on a few."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from imapd import search_keys as k
from imapd import search_sql, store
from mailboxes import actions
from mailboxes.models import Account, Message, MessageBody, RecycledMessage, Role

COUNT = 64


def raw(number: int) -> bytes:
    return f"From: a{number}@remote.test\r\nTo: alice@example.com\r\nSubject: many {number}\r\n\r\nbody\r\n".encode()


# Parameters a statement may carry whatever the number of messages: EXPUNGE's one write has about thirty (the
# counts, the log, the recycle bin's columns as arrays, the deletion's steps).
FIXED = 40


@contextmanager
def parameters() -> Iterator[list[int]]:
    """The number of parameters of each statement run meanwhile (an array counts as one)."""
    counts: list[int] = []

    def record(execute: Callable, sql: str, params, many: bool, context: dict):  # type: ignore[no-untyped-def]
        counts.append(len(params or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield counts


@pytest.fixture
def alice(db, make_account) -> Account:
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    account = make_account("alice@example.com")
    inbox = account.mailboxes.get(role=Role.INBOX).pk
    actions.append(account, inbox, raw(0))
    while Message.objects.filter(mailbox_id=inbox).count() < COUNT:  # doubled by COPY into the folder itself
        have = Message.objects.filter(mailbox_id=inbox).count()
        actions.copy(account, inbox, list(range(1, min(have, COUNT - have) + 1)), inbox)
    return account


def test_store_move_expunge_and_delete_of_every_message_send_no_parameter_per_message(alice: Account) -> None:
    inbox = alice.mailboxes.get(role=Role.INBOX).pk
    archive = alice.mailboxes.get(role=Role.ARCHIVE).pk
    every = list(range(1, COUNT + 1))
    with parameters() as counts:
        changed = actions.set_flags(alice, inbox, every, ["\\Seen", "$Big"], actions.FlagMode.ADD)
    assert len(changed) == COUNT
    assert max(counts) < FIXED, counts
    assert Message.objects.filter(mailbox_id=inbox, seen=True, keywords=" $Big ").count() == COUNT

    context = search_sql.Context(inbox, every, set(every[::2]), saved=every[1::2])
    for key, expected in [(k.Recent(), every[::2]), (k.Saved(), every[1::2])]:
        with parameters() as counts:
            assert store.search(context, key, COUNT)[0] == expected
        assert max(counts) < FIXED, counts

    with parameters() as counts:
        moved = actions.move(alice, inbox, every[: COUNT // 2], archive)
    assert moved == [(uid, uid) for uid in every[: COUNT // 2]]
    assert max(counts) < FIXED, counts

    actions.set_flags(alice, archive, every[: COUNT // 2], ["\\Deleted"], actions.FlagMode.ADD)
    with parameters() as counts:
        assert actions.expunge(alice, archive, every) == every[: COUNT // 2]
    assert max(counts) < FIXED, counts

    with parameters() as counts:
        assert actions.delete_messages(alice, inbox, every) == every[COUNT // 2 :]
    assert max(counts) < FIXED, counts
    assert not Message.objects.filter(account=alice).exists()
    assert RecycledMessage.objects.filter(account=alice).count() == COUNT
    assert MessageBody.objects.count() == 1, "the one body shared by every copy waits in the recycle bin"
