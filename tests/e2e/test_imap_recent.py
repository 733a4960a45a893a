"""\\Recent (RFC 3501 2.3.2) shared through the store: each message is recent to exactly one session, whichever
imapd process it is in; STATUS RECENT and SEARCH NEW agree with it."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from tests.e2e.conftest import free_port
from tests.e2e.test_smtp_processes import wait_for_port
from tests.imap_support import RawClient, Server, deliver, message, start

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


@pytest.fixture
def second_process(server: Server, tmp_path: Path) -> Iterator[Server]:
    """`manage.py imapd` in a process of its own, on the test database."""
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL (set DATABASE_URL), which a second process can share")
    port = free_port()
    settings = connection.settings_dict
    credentials = quote(settings["USER"]) + (f":{quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else "")
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"postgres://{credentials}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}",
        "MAILSITE_SECRET_KEY": secrets.token_urlsafe(50),
        "MAILSITE_DATA_DIR": str(tmp_path / "var"),
        "MAILSITE_IMAP_PORT": str(port),
        "MAILSITE_IMAPS_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "imapd"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    other = Server(server.host, port, 0, server.account)
    try:
        wait_for_port(port, process)
        yield other
    finally:
        other.close()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def recent(data: bytes) -> int:
    return int(re.search(rb"\* (\d+) RECENT\r\n", data)[1])


def test_recent_is_shared_between_processes(server: Server, second_process: Server) -> None:
    deliver(message("one"))
    deliver(message("two"))
    here = RawClient(server)
    there = RawClient(second_process)
    assert b"(RECENT 2)" in there.ok("STATUS INBOX (RECENT)")
    assert recent(here.ok("SELECT INBOX")) == 2
    assert b"* SEARCH 1 2\r\n" in here.ok("SEARCH NEW")
    # The other process's session comes second: nothing is recent to it, and STATUS agrees everywhere.
    assert recent(there.ok("SELECT INBOX")) == 0
    assert b"* SEARCH\r\n" in there.ok("SEARCH RECENT")
    assert b"(RECENT 0)" in there.ok("STATUS INBOX (RECENT)")
    # A message that arrives while both are selected is recent to the first session that learns of it.
    deliver(message("three"))
    data = there.ok("NOOP")
    assert b"* 3 EXISTS\r\n* 1 RECENT\r\n" in data
    data = here.ok("NOOP")
    assert b"* 3 EXISTS\r\n* 2 RECENT\r\n" in data  # its own two, not the new one
    assert b"* SEARCH 3\r\n" in there.ok("SEARCH RECENT")
    assert b"* SEARCH 1 2\r\n" in here.ok("SEARCH RECENT")
    # EXAMINE shows what is recent without taking it: it stays recent for a later SELECT.
    here.ok("CLOSE")
    there.ok("CLOSE")
    deliver(message("four"))
    assert recent(there.ok("EXAMINE INBOX")) == 1
    assert recent(here.ok("SELECT INBOX")) == 1
    assert recent(there.ok("EXAMINE INBOX")) == 0


def test_idle_sessions_of_one_process_each_see_a_new_message_and_one_takes_it(server: Server) -> None:
    """The sessions share one reading of the change (imapd.views); \\Recent still goes to exactly one."""
    clients = [RawClient(server) for _ in range(4)]
    tags = []
    for client in clients:
        assert recent(client.ok("SELECT INBOX")) == 0
        tags.append(client.send("IDLE"))
        client.read_until(b"+ ")
    deliver(message("one"))
    told = []
    for client, tag in zip(clients, tags, strict=True):
        data = client.read_until(b" RECENT\r\n")
        assert b"* 1 EXISTS\r\n" in data
        told.append(recent(data))
        client.sock.sendall(b"DONE\r\n")
        client.reply(tag)
    assert sorted(told) == [0, 0, 0, 1]
    found = [client.ok("SEARCH RECENT") for client in clients]
    assert sum(b"* SEARCH 1\r\n" in data for data in found) == 1
