"""The per-IP connection count every listener host shares in Redis (ops/limits.py `LeasedConnectionCounter`):
two counters stand for two hosts; the sessions' admissions are awaited, answered by each counter's thread."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from ops import limits

CLIENT = "192.0.2.7"


@pytest.fixture
def hosts():
    if not limits.shared():
        pytest.fail("these tests need Redis as the broker: MAILSITE_BROKER_URL=redis://127.0.0.1:6379/N")
    yield limits.LeasedConnectionCounter(2), limits.LeasedConnectionCounter(2)
    limits.client().delete(limits.key("connections", CLIENT))


def members() -> list[bytes]:
    return limits.client().zrange(limits.key("connections", CLIENT), 0, -1)


def eventually(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the lease thread did not catch up"
        time.sleep(0.01)


def test_hosts_share_the_limit_and_a_release_makes_room(hosts) -> None:
    first, second = hosts

    async def sessions() -> list[bool]:
        return [await first.admit(CLIENT), await second.admit(CLIENT), await second.admit(CLIENT)]

    assert asyncio.run(sessions()) == [True, True, False]
    assert len(members()) == 2
    first.release(CLIENT)
    eventually(lambda: len(members()) == 1)
    assert asyncio.run(second.admit(CLIENT)), "a session ended on one host frees its place on the other"


def test_many_sessions_at_once_get_exactly_the_limit(hosts) -> None:
    first, second = hosts

    async def sessions() -> list[bool]:
        return await asyncio.gather(*(counter.admit(CLIENT) for counter in (first, second) * 10))

    assert sorted(asyncio.run(sessions())) == [False] * 18 + [True] * 2
    assert len(members()) == 2


def test_a_session_gone_while_it_waits_does_not_stay_counted(hosts) -> None:
    first, _ = hosts

    async def hang_up() -> None:
        waiting = asyncio.create_task(first.admit(CLIENT))
        await asyncio.sleep(0)  # the admission is on its way to Redis
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    for _ in range(5):
        asyncio.run(hang_up())
    eventually(lambda: members() == [])
    assert [asyncio.run(first.admit(CLIENT)) for _ in range(2)] == [True, True], "both places are free"


def test_redis_unreachable_admits(caplog) -> None:
    with override_settings(MAILSITE_BROKER_URL="redis://127.0.0.1:9/0"):
        counter = limits.LeasedConnectionCounter(1)
    assert [asyncio.run(counter.admit(CLIENT)) for _ in range(2)] == [True, True]
    assert "connection limits unchecked" in caplog.text
    counter.close()  # no renewal left running against the Redis that is down


class CountedRoundTrips(limits.LeasedConnectionCounter):
    """The counter with its round trips counted, and the requests its Redis connections send."""

    round_trips = 0

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        sent = self.sent = []

        class Counted(redis.Connection):
            def send_packed_command(self, command, check_health=True) -> None:
                sent.append(command)
                super().send_packed_command(command, check_health)

        self._redis = redis.Redis.from_url(settings.MAILSITE_BROKER_URL, connection_class=Counted)

    def _round_trip(self, work, held):
        self.round_trips += 1
        return super()._round_trip(work, held)


def test_an_ended_sessions_place_goes_to_the_clients_next_session_without_a_round_trip(hosts) -> None:
    counter = CountedRoundTrips(1)
    counter.keep = 30.0  # longer than the test

    async def reconnect() -> bool:
        assert await counter.admit(CLIENT)
        counter.release(CLIENT)
        return await counter.admit(CLIENT)

    assert asyncio.run(reconnect()), "at a limit of one, the ended session's place is the next one's"
    assert counter.round_trips == 1, "only the first session went to Redis"
    assert len(members()) == 1


def test_a_kept_place_counts_on_other_hosts_is_renewed_and_goes_when_nobody_takes_it(hosts) -> None:
    with override_settings(MAILSITE_CONNECTION_LEASE=0.3):  # renewed every 0.1 s
        first = CountedRoundTrips(1)
    first.keep = 2.0
    second = limits.LeasedConnectionCounter(1)
    assert asyncio.run(first.admit(CLIENT))
    first.release(CLIENT)
    assert not asyncio.run(second.admit(CLIENT)), "the place is kept for the client's next session on its host"
    time.sleep(0.6)
    assert len(members()) == 1, "the kept place's lease is renewed (it is 0.3 s)"
    eventually(lambda: members() == [])
    assert asyncio.run(second.admit(CLIENT)), "gone after its time, the place is free on every host"
    first.close()
    second.close()


def test_the_thread_goes_to_redis_only_with_work_or_leases_to_renew(hosts) -> None:
    with override_settings(MAILSITE_CONNECTION_LEASE=0.3):  # renewed every 0.1 s
        counter = CountedRoundTrips(2)
    assert asyncio.run(counter.admit(CLIENT))
    counter.release(CLIENT)
    eventually(lambda: members() == [])
    quiet = counter.round_trips
    time.sleep(0.5)
    assert counter.round_trips == quiet, "nothing to add, remove or renew: no round trip"
    assert asyncio.run(counter.admit(CLIENT))
    time.sleep(0.5)
    assert counter.round_trips - quiet in range(3, 8), "an open session's lease is renewed every third of it"


def test_one_request_per_round_trip_and_scripts_lost_by_redis_are_loaded_again(hosts) -> None:
    counter = CountedRoundTrips(2)
    assert asyncio.run(counter.admit(CLIENT))
    counter.release(CLIENT)
    eventually(lambda: members() == [])
    counter.sent.clear()  # the connection is open: what follows is the round trips' own requests
    assert asyncio.run(counter.admit(CLIENT))
    assert len(counter.sent) == 1, "the admission went as one pipeline, nothing before it"
    counter.release(CLIENT)
    eventually(lambda: members() == [])
    limits.client().script_flush()  # as after a restart of Redis
    assert [asyncio.run(counter.admit(CLIENT)) for _ in range(3)] == [True, True, False]
    assert len(members()) == 2


def test_closed_listeners_stop_counting_their_sessions_and_renew_nothing(hosts) -> None:
    with override_settings(MAILSITE_CONNECTION_LEASE=0.3):  # renewed every 0.1 s
        counter = CountedRoundTrips(2)
    counter.keep = 30.0  # longer than the test
    assert [asyncio.run(counter.admit(CLIENT)) for _ in range(2)] == [True, True]
    counter.release(CLIENT)  # its place is kept: it goes too
    assert len(members()) == 2
    counter.close()
    eventually(lambda: members() == [])
    closed = counter.round_trips
    time.sleep(0.5)
    assert counter.round_trips == closed, "no lease renewed after the close"
    counter.release(CLIENT)  # a session that ends afterwards changes nothing
    assert asyncio.run(counter.admit(CLIENT)), "a session accepted as the listener stops is let in"
    time.sleep(0.2)
    assert counter.round_trips == closed
    assert members() == []
