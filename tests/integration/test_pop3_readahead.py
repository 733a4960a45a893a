"""RETR's bodies read ahead of the client (`pop3d.readahead`) on real PostgreSQL, through the database threads
the listener uses: in-order reading gets the next batch read meanwhile, a jump back or a message removed after
the listing still gets the right answer, and a session ending with a batch on its way leaves nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mailboxes import actions, asyncdb
from mailboxes.models import Account
from pop3d import maildrop, readahead
from tests.pop3_support import ADDRESS, deliver, stored, text_mail

COUNT = 23


@pytest.fixture
def bodies(transactional_db, make_account, monkeypatch) -> Iterator[readahead.Bodies]:
    monkeypatch.setattr(readahead, "READAHEAD_MESSAGES", 5)  # batches of five, so 23 messages make five of them
    make_account(ADDRESS)
    deliver(*(text_mail(f"number {n}", f"Body {n}.\r\n".encode() * n) for n in range(1, COUNT + 1)))
    inbox_id, listing = maildrop.open_maildrop(Account.objects.get(address=ADDRESS).pk)
    yield readahead.Bodies(inbox_id, listing.entries)
    asyncdb.shutdown()


def test_in_order_the_next_batch_is_read_while_this_one_is_sent(bodies) -> None:
    expected = [raw for _, raw in stored()]

    async def download() -> list[bytes | None]:
        got = [await bodies.body(1)]
        assert bodies.next is None, "one message taken: the client may be jumping about, nothing read ahead"
        got.append(await bodies.body(2))
        assert bodies.next is not None
        assert (bodies.batch_end, bodies.next_end) == (6, 11)
        for number in range(3, 7):
            got.append(await bodies.body(number))
        assert (bodies.batch_end, bodies.next_end) == (11, 16), "message 6 came from the batch read ahead"
        got.extend([await bodies.body(number) for number in range(7, COUNT + 1)])
        assert bodies.next is None, "nothing after the last batch"
        return got

    assert asyncio.run(download()) == expected


def test_a_jump_back_and_messages_removed_after_the_listing(bodies) -> None:
    expected = [raw for _, raw in stored()]
    account = Account.objects.get(address=ADDRESS)
    uids = [uid for uid, _ in stored()]

    async def download() -> list[bytes | None]:
        got = [await bodies.body(number) for number in (1, 2, 3)]  # the batch of 6 to 10 is on its way
        # Removed over IMAP meanwhile: one in the batch in hand, one in a batch not read yet.
        await asyncdb.call(actions.delete_messages, account, bodies.inbox_id, [uids[3], uids[13]])
        got += [await bodies.body(number) for number in range(4, 16)]
        got.append(await bodies.body(2))  # read again, after the batch it came in was used up
        return got

    got = asyncio.run(download())
    assert got[:3] == expected[:3]
    assert got[3] == expected[3], "message 4 was read with its batch, before it was removed"
    assert got[4:13] == expected[4:13]
    assert got[13] is None, "message 14 was removed before its batch was read"
    assert got[14] == expected[14]
    assert got[15] == expected[1]


def test_a_session_ending_with_a_batch_on_its_way(bodies) -> None:
    async def start_and_stop() -> None:
        await bodies.body(1)
        await bodies.body(2)
        assert bodies.next is not None
        assert not bodies.next.done()
        bodies.close()
        assert bodies.next is None
        await asyncio.sleep(0.2)  # the database thread finishes its query; its answer goes nowhere

    asyncio.run(start_and_stop())


def test_a_batch_brings_every_byte_value_back(db, make_account) -> None:
    """Bodies are read in PostgreSQL's binary format (no hexadecimal text): each comes back as stored, whatever
    its bytes, and only while the Inbox holds it."""
    make_account(ADDRESS)
    deliver(text_mail("every byte", bytes(range(256)) * 3 + b"\r\n"), text_mail("plain"), text_mail("gone"))
    inbox_id, listing = maildrop.open_maildrop(Account.objects.get(address=ADDRESS).pk)
    expected = {entry.body_id: raw for entry, (_, raw) in zip(listing.entries, stored(), strict=True)}
    gone = listing.entries[2]
    actions.delete_messages(Account.objects.get(address=ADDRESS), inbox_id, [gone.uid])
    got = maildrop.read_bodies(inbox_id, [entry.body_id for entry in listing.entries])
    assert got == {body_id: raw for body_id, raw in expected.items() if body_id != gone.body_id}
    assert bytes(range(256)) * 3 in got[listing.entries[0].body_id]
