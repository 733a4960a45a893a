"""Concurrent writers on PostgreSQL: UIDs stay unique and ascend in commit order."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import connection, connections

from mailboxes import actions, changes
from mailboxes.models import Message, Role

RAW = b"From: a@remote.test\r\nTo: rcpt@example.com\r\nSubject: parallel %d\r\n\r\nbody %d\r\n"


@pytest.mark.django_db(transaction=True)
def test_parallel_deliveries_get_unique_ascending_uids(make_account) -> None:
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    account = make_account("rcpt@example.com")
    threads, per_thread = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def deliver_many(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                number = worker * per_thread + n
                actions.deliver(RAW % (number, number), "a@remote.test", ["rcpt@example.com"])
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=deliver_many, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    inbox = account.mailboxes.get(role=Role.INBOX)
    # Rows are inserted after the folder row is locked, so insertion order (pk) is commit order.
    uids = list(Message.objects.filter(mailbox=inbox).order_by("pk").values_list("uid", flat=True))
    total = threads * per_thread
    assert uids == list(range(1, total + 1))
    inbox.refresh_from_db()
    assert inbox.uidnext == total + 1
    account.refresh_from_db()
    assert account.used_bytes == sum(Message.objects.filter(account=account).values_list("size", flat=True))


@pytest.mark.django_db(transaction=True)
def test_change_hub_hears_commits_from_other_connections(make_account) -> None:
    account = make_account("watcher@example.com")
    inbox_id = account.mailboxes.get(role=Role.INBOX).pk
    delivered = threading.Event()

    def deliver_in_another_thread() -> None:
        try:
            actions.deliver(RAW % (1, 1), "a@remote.test", ["watcher@example.com"])
        finally:
            connections.close_all()
            delivered.set()

    async def watch() -> int:
        async with changes.hub().subscribe(account.pk) as queue:
            await asyncio.sleep(0.3)  # the hub is listening (or has taken its first poll)
            threading.Thread(target=deliver_in_another_thread).start()
            while True:
                mailbox_id = await asyncio.wait_for(queue.get(), timeout=5)
                if mailbox_id == inbox_id:
                    return mailbox_id

    assert asyncio.run(watch()) == inbox_id
    assert delivered.wait(5)
