"""Group commits: concurrent deliveries share a transaction, but a refused message never takes others down."""

from __future__ import annotations

import asyncio

import pytest

from mailboxes import actions, asyncdb
from mailboxes.models import Account, Domain, Message, MessageBody
from mailcore.mime import MimeTooDeep
from smtpd.batching import DeliveryGroups
from tests.smtp_support import mail

DEEP = b"Subject: deep\r\n" + b"".join(
    b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n) for n in range(101)
)


@pytest.fixture
def groups(transactional_db, make_account):
    make_account("alice@example.com")
    make_account("bob@example.com")
    yield DeliveryGroups(max_in_flight=1, max_group=8)
    asyncdb.shutdown()


def test_one_hostile_message_in_a_group_is_refused_alone(groups):
    async def deliver_all():
        jobs = [
            groups.deliver(mail(f"m{n}"), "carol@remote.test", ["alice@example.com", "bob@example.com"])
            for n in range(6)
        ]
        jobs.insert(3, groups.deliver(DEEP, "carol@remote.test", ["alice@example.com"]))
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(deliver_all())
    assert isinstance(results[3], MimeTooDeep)
    assert all(not isinstance(r, Exception) and r.accepted for i, r in enumerate(results) if i != 3)
    assert MessageBody.objects.count() == 6
    assert Message.objects.filter(account__address="alice@example.com").count() == 6
    # UIDs ascend without gaps although a message between them was rolled back.
    uids = list(
        Message.objects.filter(account__address="bob@example.com").order_by("uid").values_list("uid", flat=True)
    )
    assert uids == list(range(uids[0], uids[0] + 6))


def test_groups_are_formed_while_a_group_is_being_stored(groups):
    sizes: list[int] = []
    original = asyncdb.call

    async def counting_call(func, deliveries, *args):
        sizes.append(len(deliveries))
        return await original(func, deliveries, *args)

    async def deliver_all():
        asyncdb_call, asyncdb.call = asyncdb.call, counting_call
        try:
            return await asyncio.gather(
                *(groups.deliver(mail(f"m{n}"), "carol@remote.test", ["alice@example.com"]) for n in range(20))
            )
        finally:
            asyncdb.call = asyncdb_call

    reports = asyncio.run(deliver_all())
    assert all(r.accepted == ["alice@example.com"] for r in reports)
    # All twenty finish DATA before the first group starts, so they go in groups of at most 8, in order.
    assert sizes == [8, 8, 4]
    assert Message.objects.count() == 20


def test_a_message_arriving_as_the_last_group_ends_is_stored(groups):
    """A message queued in the very loop step in which a drain finds nothing left must start a drain of its own
    (it once waited for the next message to come along, and at the end of a burst none did)."""

    async def deliver_late():
        original = asyncdb.call
        group_stored = asyncio.get_running_loop().create_future()

        async def call_then_signal(func, *args):
            results = await original(func, *args)
            if not group_stored.done():
                group_stored.set_result(None)  # wakes `late` ahead of the drain's own end
            return results

        async def late():
            await group_stored
            return await groups.deliver(mail("late"), "carol@remote.test", ["alice@example.com"])

        asyncdb.call = call_then_signal
        try:
            late_delivery = asyncio.get_running_loop().create_task(late())
            first = await groups.deliver(mail("first"), "carol@remote.test", ["alice@example.com"])
            return first, await asyncio.wait_for(late_delivery, timeout=10)
        finally:
            asyncdb.call = original

    first, late = asyncio.run(deliver_late())
    assert first.accepted == late.accepted == ["alice@example.com"]
    assert Message.objects.count() == 2


@pytest.mark.parametrize("change", ["account deleted", "account disabled", "domain disabled"])
def test_a_recipient_gone_since_rcpt_is_looked_up_again(groups, change):
    """RCPT's answer saves a lookup at DATA; if the account stopped taking mail meanwhile, its message is looked
    up afresh (and refused for it) while the rest of the group is stored."""
    at_rcpt = actions.resolve_recipient("bob@example.com")
    bob = Account.objects.filter(address="bob@example.com")
    if change == "account deleted":
        bob.delete()
    elif change == "account disabled":
        bob.update(is_active=False)
    else:
        Domain.objects.filter(name="example.com").update(active=False)

    async def deliver_both():
        return await asyncio.gather(
            groups.deliver(mail("for alice"), "carol@remote.test", ["alice@example.com"]),
            groups.deliver(mail("for bob"), "carol@remote.test", ["bob@example.com"], {"bob@example.com": at_rcpt}),
        )

    for_alice, for_bob = asyncio.run(deliver_both())
    if change == "domain disabled":  # alice's domain too: the fresh lookup finds no local domain at all
        assert for_alice.results == {"alice@example.com": actions.RecipientStatus.REMOTE}
        assert not Message.objects.exists()
        return
    assert for_alice.accepted == ["alice@example.com"]
    assert for_bob.results == {"bob@example.com": actions.RecipientStatus.UNKNOWN}
    assert list(Message.objects.values_list("account__address", flat=True)) == ["alice@example.com"]
