"""Messages over IMAP with imaplib and imapclient: FETCH items, STORE, SEARCH, APPEND, COPY, MOVE, EXPUNGE."""

from __future__ import annotations

import datetime
import imaplib
import re
import threading
from collections.abc import Iterator

import imapclient
import pytest
from django.db import connection

from imapd import fetch, store
from imapd.commands import messages
from mailboxes.models import Message
from tests.conftest import PASSWORD
from tests.imap_support import ADDRESS, RawClient, Server, deliver, message, start

NESTED = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.org>\r\n"
    b'To: alice@example.test, "Carol" <carol@example.org>\r\n'
    b"Cc: dave@example.org\r\n"
    b"Subject: =?utf-8?b?R3LDvMOfZQ==?= nested\r\n"
    b"Date: Tue, 02 Jan 2024 12:30:00 +0100\r\n"
    b"Message-ID: <nested@example.org>\r\n"
    b"X-Tracking: abc123\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Hello</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="a.pdf"\r\n'
    b'Content-Disposition: attachment; filename="a.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0=\r\n"
    b"--outer--\r\n"
)


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


@pytest.fixture
def seeded(server: Server) -> Server:
    deliver(message("first message", "one\r\n"))
    deliver(NESTED)
    deliver(message("third", "three little words\r\n", In_Reply_To="<first.message@example.org>"))
    # A first session takes the new messages' \Recent (shared by all sessions, tests/e2e/test_imap_recent.py),
    # so the tests below see plain flags.
    first = server.client()
    first.select("INBOX")
    first.logout()
    return server


def fetch_one(client, seq: str, items: str) -> bytes:
    typ, data = client.fetch(seq, items)
    assert typ == "OK", data
    return b"".join(part if isinstance(part, bytes) else b"".join(part) for part in data)


def test_fetch_simple_items(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    raw = Message.objects.get(uid=2).body.raw
    data = fetch_one(client, "2", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
    assert re.fullmatch(
        rb'2 \(UID 2 FLAGS \(\) INTERNALDATE "\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d \+0000" RFC822.SIZE %d\)' % len(raw),
        data,
    ), data
    data = fetch_one(client, "2", "(ENVELOPE)")
    assert data == (
        b'2 (ENVELOPE ("Tue, 02 Jan 2024 12:30:00 +0100" "=?utf-8?b?R3LDvMOfZQ==?= nested" '
        b'(("=?utf-8?q?J=C3=BCrgen?=" NIL "jurgen" "example.org")) '
        b'(("=?utf-8?q?J=C3=BCrgen?=" NIL "jurgen" "example.org")) '
        b'(("=?utf-8?q?J=C3=BCrgen?=" NIL "jurgen" "example.org")) '
        b'((NIL NIL "alice" "example.test")("Carol" NIL "carol" "example.org")) '
        b'((NIL NIL "dave" "example.org")) NIL NIL "<nested@example.org>"))'
    )


def test_fetch_bodystructure_and_body(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    data = fetch_one(client, "2", "(BODYSTRUCTURE)")
    assert data == (
        b'2 (BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "8BIT" 17 1 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL) "alternative" '
        b'("boundary" "inner") NIL NIL NIL)'
        b'("application" "pdf" ("name" "a.pdf") NIL NIL "BASE64" 8 NIL ("attachment" ("filename" "a.pdf")) NIL NIL) '
        b'"mixed" ("boundary" "outer") NIL NIL NIL))'
    )
    data = fetch_one(client, "2", "(BODY)")
    assert data == (
        b'2 (BODY ((("text" "plain" ("charset" "utf-8") NIL NIL "8BIT" 17 1)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "7BIT" 12 1) "alternative")'
        b'("application" "pdf" ("name" "a.pdf") NIL NIL "BASE64" 8) "mixed"))'
    )


def test_fetch_sections(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    raw = bytes(Message.objects.get(uid=2).body.raw)
    header, _, text = raw.partition(b"\r\n\r\n")

    def section(spec: str) -> bytes:
        typ, data = client.fetch("2", f"(BODY.PEEK[{spec}])")
        assert typ == "OK", data
        return data[0][1]

    assert section("") == raw
    assert section("HEADER") == header + b"\r\n\r\n"
    assert section("TEXT") == text
    assert section("1.1") == "Grüße aus Köln".encode() + b"\r\n".rstrip()
    assert section("1.2") == b"<p>Hello</p>"
    assert section("1.1.MIME") == b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    assert section("2") == b"JVBERi0="
    assert section("HEADER.FIELDS (SUBJECT x-tracking)") == (
        b"Subject: =?utf-8?b?R3LDvMOfZQ==?= nested\r\nX-Tracking: abc123\r\n\r\n"
    )
    not_fields = section("HEADER.FIELDS.NOT (Subject X-Tracking Received Return-Path)")
    assert b"Subject" not in not_fields
    assert b"From: " in not_fields
    _, data = client.fetch("2", "(BODY.PEEK[]<0.10> BODY.PEEK[TEXT]<100000.5>)")
    assert data[0][1] == raw[:10]
    assert b"BODY[]<0> {10}" in data[0][0]
    assert data[1] == (b" BODY[TEXT]<100000> {0}", b"")
    _typ, data = client.fetch("2", "(BODY.PEEK[3])")
    assert data == [b"2 (BODY[3] NIL)"]


def test_rfc822_items_and_seen(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    raw = bytes(Message.objects.get(uid=1).body.raw)
    _, data = client.fetch("1", "(RFC822.HEADER)")
    assert data[0][1] == raw.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert not Message.objects.get(uid=1).seen  # RFC822.HEADER is a peek
    _, data = client.fetch("1", "(RFC822.TEXT)")
    assert data[0][1] == b"one\r\n"
    assert data[1] == b" FLAGS (\\Seen))"  # the implicit \Seen is reported (RFC 3501 6.4.5)
    assert Message.objects.get(uid=1).seen
    _, data = client.fetch("3", "(RFC822)")
    assert data[0][1] == bytes(Message.objects.get(uid=3).body.raw)
    assert Message.objects.get(uid=3).seen
    _typ, data = client.fetch("2", "(BODY[1.2])")
    assert Message.objects.get(uid=2).seen


def test_an_implicit_seen_is_told_once(seeded: Server) -> None:
    client = RawClient(seeded)
    client.ok("SELECT INBOX")
    data = client.ok("FETCH 1 (BODY[TEXT])") + client.ok("NOOP")
    # The \Seen the fetch set goes with its reply (RFC 3501 6.4.5), and is not announced again afterwards.
    assert data.count(b"* 1 FETCH") == 1, data
    assert b"FLAGS (\\Seen)" in data


def test_examine_does_not_set_seen(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX", readonly=True)
    client.fetch("1", "(BODY[])")
    assert not Message.objects.get(uid=1).seen
    typ, data = client.store("1", "+FLAGS", "\\Flagged")
    assert typ == "NO"
    assert data[0].startswith(b"[READ-ONLY]")


def test_fetch_errors(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    for items in ("(BOGUS)", "(BODY[HEADER.FIELDS])", "(BODY[0])", "(BODY[]<0.0>)", "(BODY[1.X])"):
        with pytest.raises(client.error):
            client.fetch("1", items)
    with pytest.raises(client.error, match="out of range"):
        client.fetch("9", "FLAGS")
    assert client.uid("FETCH", "99", "FLAGS") == ("OK", [None])


def test_store_and_uid_store(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    _, data = client.store("1:2", "+FLAGS", "(\\Flagged $Work)")
    assert data == [b"1 (FLAGS (\\Flagged $Work))", b"2 (FLAGS (\\Flagged $Work))"]
    _, data = client.store("1", "-FLAGS", "($Work)")
    assert data == [b"1 (FLAGS (\\Flagged))"]
    _, data = client.uid("STORE", "2", "FLAGS.SILENT", "(\\Answered)")
    assert data == [None]
    message = Message.objects.get(uid=2)
    assert (message.answered, message.flagged, message.keywords) == (True, False, "")
    _typ, data = client.uid("STORE", "1:*", "FLAGS", "(\\Seen)")
    assert data[0] == b"1 (UID 1 FLAGS (\\Seen))"
    assert Message.objects.filter(seen=True).count() == 3
    with pytest.raises(client.error):
        client.store("1", "BOGUS", "(\\Seen)")


def test_search_keys(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Flagged \\Seen)")
    client.store("3", "+FLAGS", "($Later)")

    def search(*criteria: str) -> list[int]:
        typ, data = client.search(None, *criteria)
        assert typ == "OK", data
        return [int(n) for n in data[0].split()]

    assert search("ALL") == [1, 2, 3]
    assert search("FLAGGED") == [1]
    assert search("UNFLAGGED") == [2, 3]
    assert search("SEEN") == [1]
    assert search("UNSEEN") == [2, 3]
    assert search("KEYWORD", "$Later") == [3]
    assert search("UNKEYWORD", "$Later") == [1, 2]
    assert search("FROM", "bob@example") == [1, 3]
    assert search("TO", "carol") == [2]
    assert search("CC", "dave") == [2]
    assert search("SUBJECT", "third") == [3]
    assert search("BODY", "little") == [3]
    assert search("TEXT", "little") == [3]
    if connection.vendor == "postgresql":
        assert search("HEADER", "X-Tracking", "abc") == [2]
    else:  # a field without a column of its own is matched in the raw bytes, which only PostgreSQL does here
        with pytest.raises(imaplib.IMAP4.error, match="need PostgreSQL"):
            search("HEADER", "X-Tracking", "abc")
    assert search("HEADER", "In-Reply-To", "first.message") == [3]
    assert search("LARGER", "500") == [2]
    assert search("SMALLER", "500") == [1, 3]
    assert search("SENTON", "2-Jan-2024") == [2]
    assert search("SENTBEFORE", "2-Jan-2024") == [1, 3]
    assert search("SENTSINCE", "2-Jan-2024") == [2]
    today = datetime.datetime.now(datetime.UTC).strftime("%d-%b-%Y")
    assert search("ON", today) == [1, 2, 3]
    assert search("SINCE", today) == [1, 2, 3]
    assert search("BEFORE", today) == []
    assert search("NOT", "SEEN") == [2, 3]
    assert search("OR", "FLAGGED", "KEYWORD", "$Later") == [1, 3]
    assert search("2:3") == [2, 3]
    assert search("UID", "1,3") == [1, 3]
    assert search("(OR SEEN ANSWERED) 1:*") == [1]
    assert search("RECENT") == []  # recent to the fixture's first session, which took them
    assert search("NEW") == []
    assert search("OLD") == [1, 2, 3]
    assert search("CHARSET", "UTF-8", "SUBJECT", "third") == [3]
    _, data = client.uid("SEARCH", "UNSEEN")
    assert data == [b"2 3"]
    typ, data = client.search("KOI8-R", "ALL")
    assert typ == "NO"
    assert data[0].startswith(b"[BADCHARSET (UTF-8 US-ASCII)]")
    with pytest.raises(client.error, match="Unknown search key"):
        client.search(None, "FROBNICATE")


def test_search_utf8_literal(seeded: Server) -> None:
    client = imapclient.IMAPClient(seeded.host, port=seeded.port, ssl=False, timeout=10)
    seeded.track(client._imap)
    client.login(ADDRESS, PASSWORD)
    client.select_folder("INBOX")
    assert client.search(["SUBJECT", "Grüße"], charset="UTF-8") == [2]
    assert client.search(["BODY", "Köln"], charset="UTF-8") == [2]


def test_append_with_literals(seeded: Server) -> None:
    client = seeded.client()
    raw = message("appended", "body\r\n")
    typ, data = client.append("Drafts", "(\\Draft $Mine)", '"05-Mar-2023 08:09:10 +0200"', raw)
    assert typ == "OK"
    match = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert match is not None
    stored = Message.objects.get(mailbox__name="Drafts")
    assert stored.uid == int(match[2])
    assert bytes(stored.body.raw) == raw
    assert stored.draft
    assert stored.keywords == " $Mine "
    assert stored.internal_date == datetime.datetime(2023, 3, 5, 6, 9, 10, tzinfo=datetime.UTC)
    typ, data = client.append("Nowhere", None, None, raw)
    assert typ == "NO"
    assert data[0].startswith(b"[TRYCREATE]")


def test_append_literal_plus(seeded: Server) -> None:
    import socket

    sock = seeded.track(socket.create_connection((seeded.host, seeded.port), timeout=10))
    sock.recv(4096)
    raw = message("plus", "via LITERAL+\r\n")
    sock.sendall(b'l LOGIN %s "%s"\r\n' % (ADDRESS.encode(), PASSWORD.encode()))
    sock.sendall(b"a APPEND INBOX {%d+}\r\n%s\r\nb NOOP\r\n" % (len(raw), raw))
    received = b""
    while b"b OK" not in received:
        received += sock.recv(4096)
    assert b"\r\n+ " not in received  # no continuation for a non-synchronising literal
    assert re.search(rb"a OK \[APPENDUID \d+ 4\]", received)
    assert bytes(Message.objects.get(uid=4).body.raw) == raw


def test_copy_move_expunge(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    dates = {m.uid: m.internal_date for m in Message.objects.filter(mailbox__name="INBOX")}
    typ, data = client.copy("1:2", "Archive")
    assert typ == "OK"
    assert re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0])
    archived = Message.objects.filter(mailbox__name="Archive").order_by("uid")
    assert [m.internal_date for m in archived] == [dates[1], dates[2]]
    typ, data = client.uid("MOVE", "3", "Trash")
    assert typ == "OK"
    assert client.untagged_responses.pop("EXPUNGE") == [b"3"]
    assert Message.objects.get(mailbox__name="Trash").internal_date == dates[3]
    client.store("1", "+FLAGS", "\\Deleted")
    _, data = client.expunge()
    assert data == [b"1"]
    assert list(Message.objects.filter(mailbox__name="INBOX").values_list("uid", flat=True)) == [2]
    client.store("1", "+FLAGS", "\\Deleted")
    typ, data = client.uid("EXPUNGE", "999")
    assert typ == "OK"
    assert Message.objects.filter(mailbox__name="INBOX").count() == 1
    _, data = client.uid("EXPUNGE", "2")
    assert Message.objects.filter(mailbox__name="INBOX").count() == 0
    typ, data = client.uid("COPY", "1", "Nowhere")
    assert typ == "NO"
    assert data[0].startswith(b"[TRYCREATE]")


def test_close_expunges_and_unselect_does_not(seeded: Server) -> None:
    client = seeded.client()
    client.select("INBOX")
    client.store("1", "+FLAGS", "\\Deleted")
    assert client._simple_command("UNSELECT")[0] == "OK"
    assert Message.objects.filter(mailbox__name="INBOX").count() == 3
    client.select("INBOX")
    assert client.close()[0] == "OK"
    assert Message.objects.filter(mailbox__name="INBOX").count() == 2


def test_imapclient_walkthrough(seeded: Server) -> None:
    client = imapclient.IMAPClient(seeded.host, port=seeded.port, ssl=False, timeout=10)
    seeded.track(client._imap)
    client.login(ADDRESS, PASSWORD)
    (server_id,) = client.id_({"name": "test"})
    assert server_id[:2] == (b"name", b"Mailsite")
    assert client.namespace().personal == (("", "/"),)
    folders = {name: flags for flags, _, name in client.list_folders()}
    assert b"\\Sent" in folders["Sent"]
    info = client.select_folder("INBOX")
    assert info[b"EXISTS"] == 3
    data = client.fetch([2], ["ENVELOPE", "BODYSTRUCTURE", "FLAGS", "INTERNALDATE", "RFC822.SIZE"])
    envelope = data[2][b"ENVELOPE"]
    assert envelope.subject == b"=?utf-8?b?R3LDvMOfZQ==?= nested"
    assert envelope.from_[0].mailbox == b"jurgen"
    assert data[2][b"BODYSTRUCTURE"].is_multipart
    client.move([3], "Archive")
    assert client.folder_status("Archive", ["MESSAGES"])[b"MESSAGES"] == 1
    client.logout()


def test_fetch_reads_the_next_batch_while_it_writes_one(seeded: Server, monkeypatch) -> None:
    """Batches of two: without \\Seen to set, the second batch is being read before the first message of the first
    is made; with \\Seen to set, each batch is read (and marked) in turn. The bytes are those of one batch."""
    client = RawClient(seeded)
    client.ok("SELECT INBOX")
    items = "(UID FLAGS ENVELOPE BODY.PEEK[HEADER.FIELDS (Subject)])"
    whole = client.ok(f"FETCH 1:* {items}").splitlines(keepends=True)[:-1]
    monkeypatch.setattr(messages, "FETCH_BATCH", 2)
    monkeypatch.setattr(messages, "FETCH_BATCH_BODIES", 2)
    reads: list[int] = []  # the first UID of each batch read
    second_read = threading.Event()
    waited: list[bool] = []
    patience = [5.0]
    read, render = store.fetch, fetch.render

    def counted_read(account, mailbox_id, ranges, *args):
        reads.append(ranges[0][0])
        if len(reads) == 2:
            second_read.set()
        return read(account, mailbox_id, ranges, *args)

    def render_first_after_second_read(seq, *args, **kwargs):
        if seq == 1:
            waited.append(second_read.wait(patience[0]))
        return render(seq, *args, **kwargs)

    monkeypatch.setattr(store, "fetch", counted_read)
    monkeypatch.setattr(fetch, "render", render_first_after_second_read)
    assert client.ok(f"FETCH 1:* {items}").splitlines(keepends=True)[:-1] == whole
    assert (reads, waited) == ([1, 3], [True])
    reads.clear()
    waited.clear()
    second_read.clear()
    patience[0] = 0.5
    client.ok("FETCH 1:* (UID BODY[HEADER.FIELDS (Subject)])")
    assert (reads, waited) == ([1, 3], [False]), "the second batch is read once the first is written"
