"""Limits shared by listener hosts through Redis (ops/limits.py): two `manage.py smtpd` processes with data dirs
of their own, as on two hosts, share one count of each client's connections, and the sessions of a process
killed with SIGKILL stop counting once their leases run out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from ops import limits
from tests.e2e.conftest import PORT_SETTINGS, free_port
from tests.e2e.test_smtp_processes import greeting, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2


@pytest.fixture
def listener_host(transactional_db, tmp_path: Path) -> Iterator[Callable[[str], tuple[int, subprocess.Popen[bytes]]]]:
    """Start `manage.py smtpd` as a host of its own (its own data dir and ports), sharing the test's Redis."""
    if not limits.shared():
        pytest.fail("these tests need Redis as the broker: MAILSITE_BROKER_URL=redis://127.0.0.1:6379/N")
    if connection.vendor != "postgresql":
        pytest.skip("the listener processes need the test database on a server (PostgreSQL)")
    database = connection.settings_dict
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> tuple[int, subprocess.Popen[bytes]]:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "MAILSITE_DATA_DIR": str(tmp_path / name),
            "MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP": "2",
            "MAILSITE_CONNECTION_LEASE": f"{LEASE}s",
            **{setting: str(free_port()) for setting in PORT_SETTINGS},
        }
        process = subprocess.Popen(
            [sys.executable, "manage.py", "smtpd"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        started.append(process)
        port = int(env["MAILSITE_SMTP_PORT"])
        wait_for_port(port, process)
        return port, process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_the_per_ip_limit_holds_across_hosts(listener_host) -> None:
    (first, _), (second, _) = listener_host("one"), listener_host("two")
    time.sleep(0.5)  # the readiness probes' sessions have ended
    opened: list[socket.socket] = []
    try:
        replies = []
        for port in (first, second, first, second):
            sock, reply = greeting(port)
            opened.append(sock)
            replies.append(reply[:4])
        assert replies == [b"220 ", b"220 ", b"421 ", b"421 "]
        opened.pop(0).close()
        time.sleep(limits.LeasedConnectionCounter.keep + 0.3)  # its host keeps the place a while for the client
        sock, reply = greeting(second)
        opened.append(sock)
        assert reply.startswith(b"220 "), "a session closed on one host frees its place on the other"
    finally:
        for sock in opened:
            sock.close()


def test_a_dead_hosts_sessions_stop_counting_when_their_leases_end(listener_host) -> None:
    (first, doomed), (second, _) = listener_host("doomed"), listener_host("survivor")
    time.sleep(0.5)
    opened = [greeting(first)[0], greeting(first)[0]]
    try:
        held = greeting(second)
        opened.append(held[0])
        assert held[1].startswith(b"421 ")
        time.sleep(LEASE)  # renewed meanwhile: an idle session of a live process keeps its place
        held = greeting(second)
        opened.append(held[0])
        assert held[1].startswith(b"421 ")
        members = limits.client().zrange(limits.key("connections", "127.0.0.1"), 0, -1)
        assert [member.split(b":")[1] for member in members] == [str(doomed.pid).encode()] * 2
        doomed.send_signal(signal.SIGKILL)  # no release, no clean-up: only the leases end
        doomed.wait()
        deadline = time.monotonic() + LEASE + 3
        while True:
            sock, reply = greeting(second)
            opened.append(sock)
            if reply.startswith(b"220 "):
                break
            assert time.monotonic() < deadline, "the dead process's sessions still count"
            time.sleep(0.3)
    finally:
        for sock in opened:
            sock.close()
