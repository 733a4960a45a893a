"""Retry schedule, give-up, delay warnings and reply classification, from plain values."""

from __future__ import annotations

import datetime

import pytest

from relay.policy import (
    Outcome,
    RetryPolicy,
    enhanced_status,
    next_mx_after_session_failure,
    outcome_for_code,
    parse_duration,
    parse_schedule,
)

T0 = datetime.datetime(2025, 6, 2, 10, 0, tzinfo=datetime.UTC)


def test_default_schedule_is_1_5_15_30_minutes_then_hourly():
    policy = RetryPolicy()
    assert [policy.delay_after(n) for n in range(1, 9)] == [60, 300, 900, 1800, 3600, 3600, 3600, 3600]
    assert policy.next_attempt(T0, 3) == T0 + datetime.timedelta(minutes=15)


def test_gives_up_after_five_days_and_warns_after_four_hours_once():
    policy = RetryPolicy()
    assert not policy.gives_up(T0, T0 + datetime.timedelta(days=5) - datetime.timedelta(seconds=1))
    assert policy.gives_up(T0, T0 + datetime.timedelta(days=5))
    assert not policy.warns_delay(T0, T0 + datetime.timedelta(hours=3, minutes=59), warned=False)
    assert policy.warns_delay(T0, T0 + datetime.timedelta(hours=4), warned=False)
    assert not policy.warns_delay(T0, T0 + datetime.timedelta(hours=5), warned=True)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("4h", 14400), ("5d", 432000), (" 2M ", 120)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "-1m", "5w", "1.5h", "m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_schedule_from_settings_text():
    assert parse_schedule("1s, 2s,1m") == (1, 2, 60)
    assert RetryPolicy(schedule=parse_schedule("1s,2s")).delay_after(10) == 2
    with pytest.raises(ValueError, match="at least one"):
        parse_schedule(" , ")


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, Outcome.DELIVERED),
        (251, Outcome.DELIVERED),
        (421, Outcome.DEFERRED),
        (451, Outcome.DEFERRED),
        (452, Outcome.DEFERRED),
        (550, Outcome.BOUNCED),
        (554, Outcome.BOUNCED),
        (354, Outcome.DEFERRED),
    ],
)
def test_reply_codes(code, outcome):
    assert outcome_for_code(code) is outcome


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (550, "5.1.1 no such user", "5.1.1"),
        (552, "5.2.2 mailbox full", "5.2.2"),
        (550, "no such user", "5.0.0"),
        (451, "4.7.1 greylisted", "4.7.1"),
        (451, "5.1.1 contradicts the code", "4.0.0"),
        (250, "ok", "2.0.0"),
    ],
)
def test_enhanced_status_from_the_reply_or_the_code(code, text, status):
    assert enhanced_status(code, text) == status


def test_which_session_failures_move_on_to_the_next_mx():
    assert next_mx_after_session_failure(None)  # refused, timed out, TLS failed
    assert next_mx_after_session_failure(421)
    assert next_mx_after_session_failure(451)
    assert not next_mx_after_session_failure(554)
