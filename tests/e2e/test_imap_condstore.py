"""CONDSTORE and QRESYNC (RFC 7162) over a real imapd: mod-sequences in FETCH, SEARCH and STATUS,
CHANGEDSINCE, UNCHANGEDSINCE with MODIFIED, and resynchronisation with VANISHED (EARLIER)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator

import pytest
from django.utils import timezone

from mailboxes.actions.expunge_log import prune_expunge_log
from mailboxes.models import ExpungedMessage, Mailbox
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
    changed = re.search(rb"\* 2 FETCH \(FLAGS \(\\Flagged \\Recent\) MODSEQ \((\d+)\)\)", data)
    assert changed, data
    modseq = int(changed[1])
    assert modseq > start_modseq
    data = client.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {start_modseq})")
    assert re.findall(rb"\* (\d+) FETCH", data) == [b"2"]
    assert b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % modseq in data
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
    assert re.search(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)", data), data


def test_select_condstore_from_another_folder(server: Server) -> None:
    client = RawClient(server)
    client.ok("SELECT Drafts")
    data = client.ok("SELECT INBOX (CONDSTORE)")
    # Only the new folder's HIGHESTMODSEQ, after the old one was closed (RFC 7162 3.1.8, 3.2.11).
    assert data.count(b"[HIGHESTMODSEQ") == 1
    assert data.index(b"[CLOSED]") < data.index(b"[HIGHESTMODSEQ")


def test_condstore_errors(server: Server) -> None:
    deliver(message("m"))
    client = RawClient(server)
    client.ok("SELECT INBOX")
    assert b" BAD " in client.command("FETCH 1 (FLAGS) (CHANGEDSINCE x)")
    assert b" BAD " in client.command("UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)")  # QRESYNC not enabled
    assert b" BAD " in client.command("SELECT INBOX (QRESYNC (1 1))")
    assert b" BAD " in client.command("STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)")


def test_unchangedsince_reports_modified(server: Server) -> None:
    for n in range(3):
        deliver(message(f"m{n}"))
    client = RawClient(server)
    start_modseq = highest(client.ok("SELECT INBOX"))
    other = RawClient(server)
    other.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
    # RFC 7162 3.1.3, example 11: the message changed since is left alone and named in MODIFIED.
    data = client.ok(f"STORE 1:3 (UNCHANGEDSINCE {start_modseq}) +FLAGS (\\Seen)")
    assert data.endswith(b" OK [MODIFIED 2] Conditional STORE failed\r\n"), data
    assert re.search(rb"\* 1 FETCH \(FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)", data)
    assert re.search(rb"\* 3 FETCH \(FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)", data)
    # RFC 7162 3.1.3: no FETCH for the message left alone as part of the STORE's answer; the other
    # session's change to it is reported as such (with its UID), by the STORE or at the latest the NOOP.
    assert b"* 2 FETCH (FLAGS" not in data
    data += client.ok("NOOP")
    assert b"* 2 FETCH (UID 2 FLAGS (\\Answered \\Recent) MODSEQ (" in data
    assert b"* 2 FETCH (UID 2 FLAGS (\\Answered \\Recent) MODSEQ (" in client.ok("UID FETCH 2 (FLAGS MODSEQ)")
    data = client.ok("UID STORE 1:3 (UNCHANGEDSINCE 0) -FLAGS.SILENT (\\Seen)")
    assert data.endswith(b" OK [MODIFIED 1:3] Conditional UID STORE failed\r\n"), data


def test_qresync_resync_after_many_changes_in_another_session(server: Server) -> None:
    """The issue's acceptance test: 1,000 flag changes and 500 expunges made by another session, then a
    SELECT (QRESYNC ...) returns exactly those changes."""
    for n in range(1500):
        deliver(message(f"m{n}"))
    client = RawClient(server)
    assert b"* ENABLED QRESYNC\r\n" in client.ok("ENABLE QRESYNC")
    data = client.ok("SELECT INBOX")
    uidvalidity = int(re.search(rb"\[UIDVALIDITY (\d+)\]", data)[1])
    known = highest(data)
    client.ok("UNSELECT")
    other = RawClient(server)
    other.ok("SELECT INBOX")
    # 1,000 flag changes: UIDs 1..1000 flagged; of those, the odd ones then expunged (500), with 501..1000
    # changed but kept; and UIDs 1001..1500 untouched.
    other.ok("UID STORE 1:1000 +FLAGS.SILENT (\\Flagged)")
    other.ok("UID STORE " + ",".join(str(uid) for uid in range(1, 1000, 2)) + " +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    data = client.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {known} 1:1500))")
    vanished = re.findall(rb"\* VANISHED \(EARLIER\) ([\d:,]+)\r\n", data)
    assert len(vanished) == 1
    assert expand(vanished[0]) == set(range(1, 1000, 2))
    fetched = {int(uid): flags for uid, flags in re.findall(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)", data)}
    assert set(fetched) == set(range(2, 1001, 2))
    assert all(flags == b"\\Flagged" for flags in fetched.values())
    assert b"* 1000 EXISTS\r\n" in data
    # Nothing changed since: no VANISHED, no FETCH.
    now = highest(data)
    client.ok("UNSELECT")
    data = client.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {now}))")
    assert b"VANISHED" not in data
    assert b" FETCH " not in data
    # A wrong UIDVALIDITY: a plain SELECT.
    client.ok("UNSELECT")
    data = client.ok(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {known}))")
    assert b"VANISHED" not in data
    assert b" FETCH " not in data


def test_qresync_session_reports_vanished(server: Server) -> None:
    for n in range(5):
        deliver(message(f"m{n}"))
    client = RawClient(server)
    client.ok("ENABLE QRESYNC")
    data = client.ok("SELECT INBOX")
    known = highest(data)
    # Under QRESYNC every FETCH response has the UID, even for sequence-number commands (RFC 7162 3.2.4).
    assert re.search(rb"\* 2 FETCH \(UID 2 MODSEQ \(\d+\)\)", client.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)"))
    assert b"* 1 FETCH (UID 1 RFC822.SIZE " in client.ok("FETCH 1 (RFC822.SIZE)")
    assert b"* VANISHED 2,4\r\n" in client.ok("EXPUNGE")
    other = RawClient(server)
    other.ok("SELECT INBOX")
    other.ok("UID STORE 5 +FLAGS.SILENT (\\Deleted)")
    other.ok("UID EXPUNGE 5")
    assert b"* VANISHED 5\r\n" in client.ok("NOOP")
    data = client.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {known} VANISHED)")
    assert b"* VANISHED (EARLIER) 2,4:5\r\n" in data
    assert b"* 1 FETCH" not in data
    assert b" OK [CLOSED]" in client.ok("SELECT Drafts")


def test_qresync_from_before_the_pruned_expunge_log(server: Server) -> None:
    """Once the expunge log forgot old expunges, a client resynchronising from before them is told every
    missing UID (RFC 7162 3.2.6), and one from after them exactly the logged ones."""
    for n in range(8):
        deliver(message(f"m{n}"))
    client = RawClient(server)
    client.ok("ENABLE QRESYNC")
    data = client.ok("SELECT INBOX")
    uidvalidity, known = int(re.search(rb"\[UIDVALIDITY (\d+)\]", data)[1]), highest(data)
    other = RawClient(server)
    other.ok("SELECT INBOX")
    other.ok("UID STORE 2,3 +FLAGS.SILENT (\\Deleted)")
    other.ok("EXPUNGE")
    after_first = int(
        re.search(rb"\* STATUS \"INBOX\" \(HIGHESTMODSEQ (\d+)\)", other.ok("STATUS INBOX (HIGHESTMODSEQ)"))[1]
    )
    ExpungedMessage.objects.update(expunged=timezone.now() - datetime.timedelta(days=400))
    assert prune_expunge_log() == 2
    other.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)")
    other.ok("UID EXPUNGE 6")
    other.ok("UID STORE 8 +FLAGS.SILENT (\\Flagged)")
    # The session selected since before the horizon still learns of every expunge, and of the flag change.
    data = client.ok("NOOP")
    assert b"* VANISHED 2:3,6\r\n" in data
    assert b"* 8 FETCH (UID 8 FLAGS (\\Flagged \\Recent) MODSEQ (" in data
    client.ok("UNSELECT")
    data = client.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {known}))")
    assert b"* VANISHED (EARLIER) 2:3,6\r\n" in data
    assert re.findall(rb"\* \d+ FETCH \(UID (\d+)", data) == [b"8"]
    client.ok("UNSELECT")
    data = client.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {known} 1:4))")  # the known UIDs bound the answer
    assert b"* VANISHED (EARLIER) 2:3\r\n" in data
    data = client.ok(f"UID FETCH 5:* (FLAGS) (CHANGEDSINCE {known} VANISHED)")
    assert b"* VANISHED (EARLIER) 6\r\n" in data
    client.ok("UNSELECT")
    data = client.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {after_first}))")
    assert b"* VANISHED (EARLIER) 6\r\n" in data


def expand(numbers: bytes) -> set[int]:
    out: set[int] = set()
    for piece in numbers.decode().split(","):
        low, _, high = piece.partition(":")
        out.update(range(int(low), int(high or low) + 1))
    return out
