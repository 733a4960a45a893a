"""Writers that run their own transactions outside one (transactional_db), as IMAP's sessions do: STORE and
EXPUNGE as one transaction in two flights (mailboxes/actions/flights.py), against what the usual transaction
does; the \\Recent claim, which waits for none of the folder's writers."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import DataError, connection, transaction
from psycopg import pq

from mailboxes import actions
from mailboxes.actions import FlagMode, NotFound, flights
from mailboxes.actions.folders import claim_recent
from mailboxes.models import Account, Mailbox, Message, MessageBody, RecentMark, RecycledMessage, Role
from tests.integration.test_store_delivery import RAW

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="flights on PostgreSQL only")


@pytest.fixture
def alice(transactional_db, make_account) -> Account:
    return make_account("alice@example.com")


def inbox(account: Account) -> Mailbox:
    return Mailbox.objects.get(account=account, role=Role.INBOX)


def fill(account: Account, count: int) -> Mailbox:
    folder = inbox(account)
    for number in range(count):
        actions.append(account, folder.pk, RAW.replace(b"<m1@", b"<m%d@" % number))
    folder.refresh_from_db()
    return folder


class Sent:
    """The statements a block runs, each with whether it went in a pipeline (a flight)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, bool]] = []

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        in_flight = connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF
        self.statements.append((sql.split()[0].upper(), in_flight))
        return execute(sql, params, many, context)


@pytest.fixture
def sent() -> Iterator[Sent]:
    recorder = Sent()
    with connection.execute_wrapper(recorder):
        yield recorder


def test_a_store_is_one_transaction_in_flights(alice, sent) -> None:
    folder = fill(alice, 3)
    sent.statements.clear()
    every, changed = actions.store_flags(alice, folder.pk, [(1, 2)], 3, ["\\Seen", "$Work"], FlagMode.ADD)
    assert [(kind, flying) for kind, flying in sent.statements] == [
        ("BEGIN", True),
        ("SELECT", True),  # the folder's lock
        ("SELECT", True),  # the UID set
        ("WITH", True),  # the flags, counts and mod-sequence
        ("COMMIT", True),
    ]
    assert connection.get_autocommit()
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert [m.uid for m in every] == [1, 2]
    assert changed == every
    folder.refresh_from_db()
    stored = {m.uid: m for m in Message.objects.filter(mailbox=folder)}
    assert all(m.modseq == folder.highestmodseq for m in changed)
    assert [(m.seen, m.keywords, m.modseq) for m in (stored[1], stored[2])] == [
        (True, " $Work ", folder.highestmodseq)
    ] * 2
    assert not stored[3].seen
    assert stored[3].modseq < folder.highestmodseq
    assert folder.unseen_count == 1


def test_a_store_of_system_flags_is_one_flight(alice, sent) -> None:
    """Without keywords the statement changes the flags and counts itself: everything is sent at once."""
    folder = fill(alice, 3)
    sent.statements.clear()
    every, changed = actions.store_flags(alice, folder.pk, [(2, 3)], 3, ["\\Deleted"], FlagMode.ADD)
    assert sent.statements == [("BEGIN", True), ("SELECT", True), ("WITH", True), ("COMMIT", True)]
    assert [m.uid for m in every] == [2, 3]
    assert changed == every
    folder.refresh_from_db()
    assert [m.modseq for m in changed] == [folder.highestmodseq] * 2
    assert (folder.deleted_count, folder.deleted_size) == (2, 2 * every[0].size)
    # Nothing to change: no new mod-sequence, and every message still answered with its flags.
    every, changed = actions.store_flags(alice, folder.pk, [(1, 3)], 3, ["\\Deleted"], FlagMode.REMOVE)
    assert [(m.uid, m.deleted) for m in every] == [(1, False), (2, False), (3, False)]
    assert [m.uid for m in changed] == [2, 3]
    again, changed = actions.store_flags(alice, folder.pk, [(1, 3)], 3, ["\\Deleted"], FlagMode.REMOVE)
    assert changed == []
    assert [m.modseq for m in again] == [m.modseq for m in every]
    assert Mailbox.objects.get(pk=folder.pk).highestmodseq == folder.highestmodseq + 1


def test_flights_store_what_the_transaction_stores(alice, make_account) -> None:
    """The same STOREs on two accounts, one in flights and one in the usual transaction (inside an atomic block,
    where flights are not used): the same flags, counts and mod-sequences."""
    bob = make_account("bob@example.com")
    folders = [fill(alice, 4), fill(bob, 4)]
    steps = [
        ([(1, 4)], ["\\Seen", "\\Flagged"], FlagMode.ADD),
        ([(2, 3)], ["\\Seen"], FlagMode.REMOVE),
        ([(3, 3), (1, 1)], ["\\Deleted", "$Later", "$Work"], FlagMode.REPLACE),
        ([(1, 4)], ["$Later"], FlagMode.REMOVE),
        ([(4, 4)], ["\\Flagged"], FlagMode.ADD),  # no change: no new mod-sequence
        ([(2, 4)], ["\\Deleted", "\\Seen"], FlagMode.ADD),
        ([(3, 4)], ["\\Answered"], FlagMode.REPLACE),  # clears the keywords
        ([(1, 2), (9, 12)], ["\\Deleted", "\\Seen", "\\Draft"], FlagMode.REMOVE),
    ]
    answers: list[list[Any]] = [[], []]
    for ranges, flags, mode in steps:
        answers[0].append(actions.store_flags(alice, folders[0].pk, ranges, 4, flags, mode))
        with transaction.atomic():
            answers[1].append(actions.store_flags(bob, folders[1].pk, ranges, 4, flags, mode))

    def shown(answer: tuple[list[Message], list[Message]]) -> list[Any]:
        return [[(m.uid, actions.flag_names(m), m.modseq) for m in part] for part in answer]

    assert [shown(a) for a in answers[0]] == [shown(a) for a in answers[1]]
    columns = ("uid", "seen", "flagged", "deleted", "keywords", "modseq")
    alice_rows, bob_rows = (
        list(Message.objects.filter(mailbox=f).order_by("uid").values_list(*columns)) for f in folders
    )
    assert alice_rows == bob_rows
    counts = ("highestmodseq", "message_count", "unseen_count", "deleted_count", "total_size", "deleted_size")
    alice_counts, bob_counts = (Mailbox.objects.filter(pk=f.pk).values_list(*counts).get() for f in folders)
    assert alice_counts == bob_counts


def test_another_accounts_folder_is_not_found_and_left_alone(alice, make_account) -> None:
    bob = make_account("bob@example.com")
    folder = fill(bob, 2)
    before = list(Message.objects.filter(mailbox=folder).values_list("uid", "seen", "modseq"))
    with pytest.raises(NotFound):
        actions.store_flags(alice, folder.pk, [(1, 2)], 2, ["\\Seen"], FlagMode.ADD)
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert list(Message.objects.filter(mailbox=folder).values_list("uid", "seen", "modseq")) == before


def test_a_failing_statement_rolls_the_flights_back(alice) -> None:
    folder = fill(alice, 1)
    bump = f"UPDATE {Mailbox._meta.db_table} SET highestmodseq = highestmodseq + 1 WHERE id = %s"

    def failing() -> None:
        with flights.transaction() as flight:
            flight.send(bump, [folder.pk])
            flight.send("SELECT 1 / 0", []).fetchall()

    with pytest.raises(DataError, match="division by zero"):
        failing()
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert Mailbox.objects.get(pk=folder.pk).highestmodseq == folder.highestmodseq
    # The connection goes on as before: the next STORE works.
    _, changed = actions.store_flags(alice, folder.pk, [(1, 1)], 1, ["\\Seen"], FlagMode.ADD)
    assert [m.uid for m in changed] == [1]


def test_concurrent_stores_of_one_message_lose_no_keyword(alice) -> None:
    """Each STORE reads the message under the folder's lock, after the other committed: every keyword added by
    either session is there in the end."""
    folder = fill(alice, 1)
    keywords = [f"$k{n}" for n in range(20)]
    failures: list[BaseException] = []

    def add(mine: list[str]) -> None:
        try:
            for keyword in mine:
                actions.store_flags(alice, folder.pk, [(1, 1)], 1, [keyword], FlagMode.ADD)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(keywords[n::2],)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    stored = Message.objects.get(mailbox=folder, uid=1)
    assert sorted(stored.keyword_list) == sorted(keywords)
    assert stored.modseq == Mailbox.objects.get(pk=folder.pk).highestmodseq


def test_an_expunge_is_one_transaction_in_flights(alice, make_account, sent) -> None:
    """The look for \\Deleted messages first (no lock), then one flight: the locks, the removal and COMMIT; what it
    leaves is what the usual transaction leaves (bob's, inside an atomic block)."""
    bob = make_account("bob@example.com")
    folders = [fill(alice, 5), fill(bob, 5)]
    for account, folder in zip((alice, bob), folders, strict=True):
        actions.store_flags(account, folder.pk, [(1, 1), (3, 4)], 5, ["\\Deleted", "$Done"], FlagMode.ADD)
    sent.statements.clear()
    assert actions.expunge(alice, folders[0].pk, [3, 4, 5]) == [3, 4]
    assert sent.statements == [
        ("SELECT", False),  # any \Deleted among them
        ("BEGIN", True),
        ("SELECT", True),  # the folder's lock
        ("SELECT", True),  # the account's
        ("WITH", True),  # what to remove, counts, quota, expunge log, bin, deletion
        ("COMMIT", True),
    ]
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    with transaction.atomic():
        assert actions.expunge(bob, folders[1].pk, [3, 4, 5]) == [3, 4]
    assert actions.expunge(alice, folders[0].pk) == [1]
    with transaction.atomic():
        assert actions.expunge(bob, folders[1].pk) == [1]

    def left(account: Account, folder: Mailbox) -> list[Any]:
        counts = ("highestmodseq", "message_count", "unseen_count", "deleted_count", "total_size", "deleted_size")
        account.refresh_from_db()
        return [
            list(Message.objects.filter(mailbox=folder).order_by("uid").values_list("uid", "deleted", "modseq")),
            Mailbox.objects.filter(pk=folder.pk).values_list(*counts).get(),
            (account.used_bytes, account.used_messages),
            sorted(folder.expunged.values_list("uid", "modseq")),
            sorted(RecycledMessage.objects.filter(account=account).values_list("folder_name", "flags", "size")),
        ]

    assert left(alice, folders[0]) == left(bob, folders[1])
    assert [uid for uid, _ in left(alice, folders[0])[3]] == [1, 3, 4]
    assert MessageBody.objects.count() == 10  # kept for the bin


def test_an_expunge_in_another_accounts_folder_is_not_found(alice, make_account) -> None:
    bob = make_account("bob@example.com")
    folder = fill(bob, 2)
    actions.store_flags(bob, folder.pk, [(1, 2)], 2, ["\\Deleted"], FlagMode.ADD)
    with pytest.raises(NotFound):
        actions.expunge(alice, folder.pk)
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert Message.objects.filter(mailbox=folder).count() == 2


def test_without_a_bin_an_expunge_takes_the_usual_transaction(alice, settings, sent) -> None:
    """With MAILSITE_RETENTION_DAYS = 0 the bodies are dropped after the removal, in its transaction."""
    settings.MAILSITE_RETENTION_DAYS = 0
    folder = fill(alice, 2)
    actions.store_flags(alice, folder.pk, [(2, 2)], 2, ["\\Deleted"], FlagMode.ADD)
    sent.statements.clear()
    assert actions.expunge(alice, folder.pk) == [2]
    assert not any(flying for _, flying in sent.statements)
    assert MessageBody.objects.count() == 1
    assert not RecycledMessage.objects.exists()


@contextlib.contextmanager
def another_transaction(work: Callable[[], object], *, hold: float = 10.0) -> Iterator[None]:
    """Run `work` in a transaction of another connection (a thread), kept open while the block runs, or for `hold`
    seconds when the block waits for it."""
    started, done = threading.Event(), threading.Event()

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                started.set()
                done.wait(hold)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert started.wait(10)
        yield
    finally:
        done.set()
        thread.join()


def test_a_recent_claim_does_not_wait_for_the_folders_writers(alice) -> None:
    """The mark is a row of its own: a SELECT takes the recent messages while a writer holds the folder's lock
    (with a lock timeout here, a wait would fail the claim)."""
    folder = fill(alice, 2)
    holding = functools.partial(actions.store_flags, alice, folder.pk, [(1, 1)], 2, ["\\Seen"], FlagMode.ADD)
    try:
        with another_transaction(holding):
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '1s'")
            assert claim_recent(folder.pk, None) == 1
            assert claim_recent(folder.pk, None) == 3
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    Mailbox.objects.filter(pk=folder.pk).delete()
    assert not RecentMark.objects.exists()
    with pytest.raises(NotFound):
        claim_recent(folder.pk, None)


def test_a_recent_claim_as_its_folder_is_deleted_finds_no_folder(alice) -> None:
    """The claim reads the folder as committed and writes the mark; the folder's deletion commits meanwhile: its
    mark's reference fails, and the session is told the folder is gone."""
    folder = actions.create_mailbox(alice, "Old")
    actions.append(alice, folder.pk, RAW)
    claim_recent(folder.pk, None)  # the folder has a mark
    # The deletion commits half a second on, while the claim waits for the mark's row.
    deleting = functools.partial(actions.delete_mailbox, alice, folder.pk)
    with another_transaction(deleting, hold=0.5), pytest.raises(NotFound):
        claim_recent(folder.pk, None)
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
