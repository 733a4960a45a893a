"""Whole sessions in the order desktop and phone clients send their commands: a Thunderbird-style session
(LIST-EXTENDED, CONDSTORE, header-field fetches, IDLE, MOVE) and a phone-style resynchronisation (ENABLE
QRESYNC, LIST-STATUS, SELECT (QRESYNC ...), ESEARCH, partial body fetches, QUOTA). The command lists are
modelled on what those clients send (written down from their documented behaviour, not captured traffic)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.imap_support import RawClient, Server, deliver, message, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def untagged(data: bytes, kind: bytes) -> list[bytes]:
    return [line for line in data.split(b"\r\n") if line.startswith(b"* ") and line.split(b" ")[2:3] == [kind]]


def test_thunderbird_style_session(server: Server) -> None:
    for n in range(3):
        deliver(message(f"message {n}", f"Body {n}.\r\n", References="<message.0@example.org>"))
    client = RawClient(server)
    caps = client.ok("CAPABILITY")
    for cap in (b"LIST-EXTENDED", b"SPECIAL-USE", b"CONDSTORE", b"IDLE", b"MOVE", b"UIDPLUS", b"ID"):
        assert cap in caps
    client.ok('ID ("name" "Thunderbird" "version" "128.0")')
    client.ok("NAMESPACE")
    lines = [line for line in client.ok('LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE)').split(b"\r\n") if line]
    assert b'* LIST (\\HasNoChildren \\Subscribed \\Trash) "/" "Trash"' in lines
    client.ok('LIST "" "*" RETURN (SPECIAL-USE CHILDREN)')
    data = client.ok("SELECT INBOX (CONDSTORE)")
    modseq = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", data)[1])
    assert b"* 3 EXISTS" in data
    data = client.ok("UID FETCH 1:* (FLAGS)")
    assert len(re.findall(rb"\* \d FETCH \(UID \d FLAGS \([^)]*\) MODSEQ \(\d+\)\)", data)) == 3
    data = client.ok(
        "UID FETCH 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID "
        "Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])"
    )
    assert data.count(b"Subject: message ") == 3
    assert b"Body 1." not in data
    assert b"* 2 FETCH (UID 2 RFC822.SIZE" in data
    data = client.ok("UID FETCH 2 (UID RFC822.SIZE BODY.PEEK[])")
    assert b"Body 1." in data
    client.ok("UID STORE 2 +FLAGS (\\Seen)")
    # Idling, it hears of new mail at once.
    tag = client.send("IDLE")
    assert client.read_until(b"\r\n").startswith(b"+ ")
    deliver(message("new while idling"))
    assert client.read_until(b"\r\n") == b"* 4 EXISTS\r\n"
    client.sock.sendall(b"DONE\r\n")
    client.reply(tag)
    data = client.ok("UID MOVE 1 Trash")
    assert re.search(rb"\* OK \[COPYUID \d+ 1 1\]", data)
    assert b"* 1 EXPUNGE\r\n" in data
    # Reconnecting later, it asks only for what changed.
    data = client.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})")
    assert sorted(int(uid) for uid in re.findall(rb"UID (\d+)", data)) == [2, 4]
    assert b"BYE" in client.command("LOGOUT")


def test_phone_style_resync(server: Server) -> None:
    for n in range(5):
        deliver(message(f"message {n}", "Hello from the phone test.\r\n" * 40))
    phone = RawClient(server)
    assert b"* ENABLED QRESYNC\r\n" in phone.ok("ENABLE QRESYNC")
    data = phone.ok('LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY HIGHESTMODSEQ))')
    status = re.search(
        rb'\* STATUS "INBOX" \(MESSAGES 5 UNSEEN 5 UIDNEXT 6 UIDVALIDITY (\d+) HIGHESTMODSEQ (\d+)\)', data
    )
    assert status, data
    uidvalidity, modseq = int(status[1]), int(status[2])
    data = phone.ok("SELECT INBOX")
    phone.ok("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE ENVELOPE)")
    phone.ok("LOGOUT")
    # Meanwhile, on the desktop: one message read, one deleted, one new.
    desktop = RawClient(server)
    desktop.ok("SELECT INBOX")
    desktop.ok("UID STORE 2 +FLAGS.SILENT (\\Seen)")
    desktop.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    desktop.ok("UID EXPUNGE 4")
    deliver(message("message 5"))
    # The phone comes back and resynchronises in one round trip.
    phone = RawClient(server)
    phone.ok("ENABLE QRESYNC")
    data = phone.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:5))")
    assert b"* 5 EXISTS\r\n" in data
    assert b"* VANISHED (EARLIER) 4\r\n" in data
    changed = {int(uid) for uid in re.findall(rb"\* \d+ FETCH \(UID (\d+) FLAGS", data)}
    assert changed == {2, 6}
    data = phone.ok("UID SEARCH RETURN (COUNT MIN) UNSEEN")
    assert re.search(rb'\* ESEARCH \(TAG "t\d+"\) UID MIN 1 COUNT 4\r\n', data), data
    data = phone.ok("UID FETCH 6 (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE ENVELOPE)")
    assert b'"message 5"' in data
    data = phone.ok("UID FETCH 1 (BODY.PEEK[1]<0.100>)")
    assert b"BODY[1]<0> {100}\r\nHello from the phone test." in data
    assert b"* QUOTAROOT" in phone.ok("GETQUOTAROOT INBOX")
    assert b"BYE" in phone.command("LOGOUT")
