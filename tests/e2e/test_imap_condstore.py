"""CONDSTORE and QRESYNC (RFC 7162) over a real imapd: mod-sequences in FETCH, SEARCH and STATUS,
CHANGEDSINCE, UNCHANGEDSINCE with MODIFIED, and resynchronisation with VANISHED (EARLIER)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from mailboxes.models import Mailbox
from tests.imap_support import RawClient, Server, deliver, message, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def highest(data: bytes) -> int:
    return int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", data)[1])


def modseqs(data: bytes) -> dict[int, int]:
    return {int(uid): int(mod) for uid, mod in re.findall(rb"UID (\d+) (?:FLAGS \([^)]*\) )?MODSEQ \((\d+)\)", data)}


def test_condstore_fetch_search_and_status(server: Server) -> None:
    for n in range(3):
        deliver(message(f"m{n}"))
    client = RawClient(server)
    assert b"CONDSTORE" in client.ok("CAPABILITY")
    assert b"* ENABLED CONDSTORE\r\n" in client.ok("ENABLE CONDSTORE")
    start_modseq = highest(client.ok("SELECT INBOX"))
    data = client.ok("STORE 2 +FLAGS (\\Flagged)")
    changed = re.search(rb"\* 2 FETCH \(FLAGS \(\\Flagged\) MODSEQ \((\d+)\)\)", data)
    assert changed, data
    modseq = int(changed[1])
    assert modseq > start_modseq
    data = client.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {start_modseq})")
    assert re.findall(rb"\* (\d+) FETCH", data) == [b"2"]
    assert b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (%d))" % modseq in data
    assert b"* 3 FETCH (UID 3 MODSEQ (" in client.ok("UID FETCH 3 (MODSEQ)")
    assert b"* SEARCH 2 (MODSEQ %d)\r\n" % modseq in client.ok(f"SEARCH MODSEQ {start_modseq + 1}")
    assert b"* SEARCH\r\n" in client.ok(f"SEARCH MODSEQ {modseq + 1}")
    data = client.ok(f"UID SEARCH RETURN (COUNT) MODSEQ {start_modseq + 1}")
    assert b") UID COUNT 1 MODSEQ %d\r\n" % modseq in data
    data = client.ok("STATUS INBOX (HIGHESTMODSEQ)")
    assert b"(HIGHESTMODSEQ %d)" % Mailbox.objects.get(name="INBOX").highestmodseq in data
    # Another session's change is announced with its mod-sequence.
    other = RawClient(server)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS (\\Seen)")
    data = client.ok("NOOP")
    assert re.search(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", data), data


def test_condstore_errors(server: Server) -> None:
    deliver(message("m"))
    client = RawClient(server)
    client.ok("SELECT INBOX")
    assert b" BAD " in client.command("FETCH 1 (FLAGS) (CHANGEDSINCE x)")
    assert b" BAD " in client.command("UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")  # QRESYNC not enabled
    assert b" BAD " in client.command("SELECT INBOX (QRESYNC (1 1))")
    assert b" BAD " in client.command("STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)")
