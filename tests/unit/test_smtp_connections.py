"""The per-IP connection count shared by the listener processes of a multi-process `manage.py smtpd`."""

from __future__ import annotations

from pathlib import Path

from ops import limits
from smtpd import connections, policy


def counters(tmp_path: Path, limit: int, rows: int = 2) -> tuple[Path, list[connections.SharedConnectionCounter]]:
    table = tmp_path / "smtp-connections"
    connections.create_table(table, rows)
    return table, [connections.SharedConnectionCounter(limit, table, row, rows) for row in range(rows)]


def test_the_limit_holds_over_all_processes(tmp_path):
    _, (first, second) = counters(tmp_path, limit=3)
    assert first.acquire("192.0.2.1")
    assert first.acquire("192.0.2.1")
    assert second.acquire("192.0.2.1")
    assert not second.acquire("192.0.2.1")
    assert not first.acquire("192.0.2.1")
    assert second.acquire("192.0.2.2"), "other clients are counted apart"
    first.release("192.0.2.1")
    assert second.acquire("192.0.2.1"), "a connection closed in one process makes room in the other"
    assert not first.acquire("192.0.2.1")


def test_a_release_too_many_never_makes_room_beyond_the_limit(tmp_path):
    _, (first, second) = counters(tmp_path, limit=2)
    first.release("192.0.2.1")
    assert first.acquire("192.0.2.1")
    assert second.acquire("192.0.2.1")
    assert not second.acquire("192.0.2.1")


def test_the_rows_of_an_exited_process_are_cleared(tmp_path):
    table, (crashed, survivor) = counters(tmp_path, limit=2)
    assert crashed.acquire("192.0.2.1")
    assert crashed.acquire("192.0.2.1")
    assert not survivor.acquire("192.0.2.1")
    connections.clear_row(table, crashed.row)
    assert survivor.acquire("192.0.2.1")
    assert survivor.acquire("192.0.2.1")


def test_a_lone_process_counts_by_itself(monkeypatch, settings):
    settings.MAILSITE_BROKER_URL = "filesystem://"
    monkeypatch.delenv(connections.ENV, raising=False)
    assert isinstance(connections.for_this_process(5), policy.ConnectionCounter)


def test_with_a_redis_broker_every_host_shares_the_count(tmp_path, monkeypatch, settings):
    settings.MAILSITE_BROKER_URL = "redis://127.0.0.1:6379/0"
    table = tmp_path / "run" / "smtp-connections.1"
    connections.create_table(table, 3)
    monkeypatch.setenv(connections.ENV, connections.child_environment(table, 2, 3)[connections.ENV])
    assert isinstance(connections.for_this_process(5), limits.LeasedConnectionCounter)


def test_a_child_finds_its_row_in_the_environment(tmp_path, monkeypatch, settings):
    settings.MAILSITE_BROKER_URL = "filesystem://"
    table = tmp_path / "run" / "smtp-connections.1"
    connections.create_table(table, 3)
    monkeypatch.setenv(connections.ENV, connections.child_environment(table, 2, 3)[connections.ENV])
    counter = connections.for_this_process(5)
    assert isinstance(counter, connections.SharedConnectionCounter)
    assert (counter.row, counter.rows, counter.limit) == (2, 3, 5)
