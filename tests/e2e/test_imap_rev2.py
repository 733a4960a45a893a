"""IMAP4rev2 (RFC 9051) over a real imapd: offered beside IMAP4rev1, and once a client sends ENABLE IMAP4rev2
the differences of RFC 9051 Appendix E apply to its session (and only to it): no \\Recent, SELECT sends a LIST
response instead of RECENT and UNSEEN, every SEARCH answers ESEARCH, and folder names are UTF-8. UTF8=ACCEPT
(RFC 6855) gives UTF-8 folder names and APPEND's UTF8 form."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import pytest

from imapd import mutf7
from tests.conftest import PASSWORD
from tests.imap_support import ADDRESS, RawClient, Server, deliver, message, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def rev2(server: Server) -> RawClient:
    client = RawClient(server)
    assert b"* ENABLED IMAP4rev2\r\n" in client.ok("ENABLE IMAP4rev2")
    return client


def esearch(client: RawClient, command: str) -> bytes:
    """The reply to `command`, its tag written "T" so the ESEARCH responses read as in RFC 9051's examples."""
    tag = client.send(command)
    return client.reply(tag).replace(b'(TAG "%s")' % tag.encode(), b'(TAG "T")').replace(tag.encode() + b" OK", b"T OK")


def test_offered_beside_rev1_and_enabled_once(server: Server) -> None:
    client = RawClient(server, login=False)
    # RFC 9051 6.3.1: a server speaking both versions lists both, and IMAP4rev1 until ENABLE IMAP4rev2.
    assert re.search(rb"\* CAPABILITY IMAP4rev1 IMAP4rev2 ", client.ok("CAPABILITY"))
    client.ok(f'LOGIN {ADDRESS} "{PASSWORD}"')
    assert b"* ENABLED IMAP4rev2\r\n" in client.ok("ENABLE imap4rev2")
    assert b"* ENABLED\r\n" in client.ok("ENABLE IMAP4rev2")  # RFC 5161 3.2: only what this command enabled


def test_select_sends_list_and_neither_recent_nor_unseen(server: Server) -> None:
    for n in range(3):
        deliver(message(f"m{n}"))
    client = rev2(server)
    data = client.ok("SELECT INBOX")
    # RFC 9051 6.3.2's example: EXISTS, UIDVALIDITY, UIDNEXT, FLAGS, PERMANENTFLAGS and LIST.
    assert b"* 3 EXISTS\r\n" in data
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n' in data
    for part in (rb"\* OK \[UIDVALIDITY \d+\]", rb"\* OK \[UIDNEXT 4\]", rb"\* FLAGS \(", rb"\[PERMANENTFLAGS \("):
        assert re.search(part, data), part
    assert b"RECENT" not in data
    assert b"[UNSEEN" not in data
    assert b"* OK [CLOSED]" not in data
    # A folder was selected: RFC 9051 7.1 [CLOSED] first, then the new folder with its special use.
    data = client.ok("EXAMINE Sent")
    assert data.startswith(b"* OK [CLOSED]")
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n' in data
    # Another session that did not enable IMAP4rev2 keeps IMAP4rev1's answers.
    other = RawClient(server)
    data = other.ok("EXAMINE INBOX")
    assert b"* 0 RECENT\r\n" in data
    assert b"* OK [UNSEEN 1]" in data
    assert b"* LIST" not in data


def test_no_recent_flag_or_response(server: Server) -> None:
    deliver(message("first"))
    client = rev2(server)
    client.ok("SELECT INBOX")  # takes the folder's \Recent messages, as a rev1 session would, and shows none
    assert b"* 1 FETCH (FLAGS ())\r\n" in client.ok("FETCH 1 (FLAGS)")
    deliver(message("second"))
    data = client.ok("NOOP")
    assert b"* 2 EXISTS\r\n" in data
    assert b"RECENT" not in data
    data = client.ok("FETCH 1:* (FLAGS)")
    assert b"\\Recent" not in data
    assert esearch(client, "SEARCH RECENT") == b'* ESEARCH (TAG "T")\r\nT OK SEARCH completed\r\n'


def test_search_answers_esearch(server: Server) -> None:
    for n in range(4):
        deliver(message(f"m{n}"))
    client = rev2(server)
    client.ok("SELECT INBOX")
    client.ok("STORE 2:3 +FLAGS.SILENT (\\Flagged)")
    # RFC 9051 6.4.4's examples: ALL without RETURN or with RETURN (), nothing for no match; no SEARCH response.
    assert esearch(client, "SEARCH FLAGGED") == b'* ESEARCH (TAG "T") ALL 2:3\r\nT OK SEARCH completed\r\n'
    assert b'* ESEARCH (TAG "T") ALL 2:3\r\n' in esearch(client, "SEARCH RETURN () FLAGGED")
    assert b'* ESEARCH (TAG "T") MIN 2 COUNT 2\r\n' in esearch(client, "SEARCH RETURN (MIN COUNT) FLAGGED")
    assert esearch(client, 'SEARCH TEXT "string not in mailbox"') == (
        b'* ESEARCH (TAG "T")\r\nT OK SEARCH completed\r\n'
    )
    assert b'* ESEARCH (TAG "T") UID ALL 2:3\r\n' in esearch(client, "UID SEARCH FLAGGED")
    other = RawClient(server)
    other.ok("SELECT INBOX")
    assert b"* SEARCH 2 3\r\n" in other.ok("SEARCH FLAGGED")


def test_folder_names_are_utf8(server: Server) -> None:
    client = rev2(server)
    # RFC 9051 5.1: names are UTF-8, and "&" is an ordinary character.
    client.ok('CREATE "Entwürfe"'.encode())
    client.ok('CREATE "R&D"')
    data = client.ok('LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" {9}\r\nEntw\xc3\xbcrfe\r\n' in data
    assert b'* LIST (\\HasNoChildren) "/" "R&D"\r\n' in data
    data = client.ok('SELECT "Entwürfe"'.encode())
    assert b'* LIST (\\HasNoChildren) "/" {9}\r\nEntw\xc3\xbcrfe\r\n' in data
    assert b'* STATUS "R&D" (MESSAGES 0)\r\n' in client.ok('STATUS "R&D" (MESSAGES)')
    # The same folders in modified UTF-7 to an IMAP4rev1 session (RFC 3501 5.1.3).
    data = RawClient(server).ok('LIST "" "*"')
    assert b'"/" "Entw&APw-rfe"\r\n' in data
    assert b'"/" "R&-D"\r\n' in data


def test_utf8_accept(server: Server) -> None:
    client = RawClient(server)
    assert b" UTF8=ACCEPT" in client.ok("CAPABILITY")
    raw = "From: Jürgen <j@example.org>\r\nSubject: Grüße aus Köln\r\n\r\nHallo.\r\n".encode()
    append = b"APPEND INBOX UTF8 (~{%d+}\r\n%s)" % (len(raw), raw)
    # RFC 6855 4: the UTF8 form of APPEND only once UTF8=ACCEPT is enabled.
    assert b" BAD " in client.command(append)
    assert b"* ENABLED UTF8=ACCEPT\r\n" in client.ok("ENABLE UTF8=ACCEPT")
    assert re.search(rb"OK \[APPENDUID \d+ 1\]", client.ok(append))
    client.ok("SELECT INBOX")
    assert "Subject: Grüße aus Köln".encode() in client.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    # RFC 6855 3: folder names in UTF-8 (no IMAP4rev2 behaviour otherwise: SEARCH still answers SEARCH).
    client.ok('CREATE "Größe"'.encode())
    assert b'"/" {7}\r\nGr\xc3\xb6\xc3\x9fe\r\n' in client.ok('LIST "" "Gr*"')
    assert b"* SEARCH 1\r\n" in client.ok("SEARCH ALL")


def test_folder_commands_per_rfc_9051(server: Server) -> None:
    client = rev2(server)
    nfd = unicodedata.normalize("NFD", "Café")
    # RFC 9051 6.3.4: a name the server normalises (to NFC, RFC 5198 2) is announced with OLDNAME.
    data = client.ok(f'CREATE "{nfd}"'.encode())
    assert data.startswith(
        b'* LIST (\\HasNoChildren \\Subscribed) "/" {5}\r\nCaf\xc3\xa9 ("OLDNAME" ({6}\r\nCafe\xcc\x81))\r\n'
    )
    assert b"OLDNAME" not in client.ok('CREATE "Café/Menu"'.encode())
    # Either form names the same folder.
    assert b'* LIST (\\HasChildren) "/" {5}\r\nCaf\xc3\xa9\r\n' in client.ok(f'SELECT "{nfd}"'.encode())
    assert b"[ALREADYEXISTS]" in client.command('CREATE "Café"'.encode())
    # RFC 9051 6.3.5, 7.1: a folder with children is not deleted, and the NO says why; the folder stays selected.
    assert re.search(rb" NO \[HASCHILDREN\] ", client.command(f'DELETE "{nfd}"'.encode()))
    client.ok("CHECK")  # only valid with a folder selected
    # RFC 9051 6.3.11: no RECENT status item in IMAP4rev2, in STATUS or in LIST's RETURN (STATUS).
    assert b" BAD " in client.command("STATUS INBOX (MESSAGES RECENT)")
    assert b" BAD " in client.command('LIST "" "INBOX" RETURN (STATUS (RECENT))')
    assert b"* STATUS " in client.ok("STATUS INBOX (MESSAGES UNSEEN)")
    # An IMAP4rev1 session keeps RECENT and sees no OLDNAME; HASCHILDREN is a response code it may ignore.
    other = RawClient(server)
    assert b'* STATUS "INBOX" (RECENT 0)\r\n' in other.ok("STATUS INBOX (RECENT)")
    data = other.ok('CREATE "' + mutf7.encode(unicodedata.normalize("NFD", "Noël")) + '"')
    assert b"LIST" not in data
    assert b'* LIST (\\HasNoChildren) "/" "No&AOs-l"\r\n' in other.ok('LIST "" "No*"')
    assert re.search(rb" NO \[HASCHILDREN\] ", other.command('DELETE "Caf&AOk-"'))
    client.ok('DELETE "Café/Menu"'.encode())
    client.ok(f'DELETE "{nfd}"'.encode())
    # The deleted folder stays subscribed (RFC 9051 6.3.7), under either form of its name.
    assert b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Caf&AOk-"\r\n' in other.ok(
        'LIST (SUBSCRIBED) "" "Caf*"'
    )
    client.ok(f'UNSUBSCRIBE "{nfd}"'.encode())
    # RFC 9051 6.3.8: unsubscribing a name that is not subscribed is OK; in rev1 (RFC 3501 6.3.7), NO.
    client.ok(f'UNSUBSCRIBE "{nfd}"'.encode())
    assert other.command('UNSUBSCRIBE "Caf&AOk-"').endswith(b" NO That name is not subscribed\r\n")


def test_8bit_headers_downgraded_for_clients_without_utf8(server: Server) -> None:
    subject = "Grüße aus Köln".encode()
    deliver(
        b"From: J\xc3\xbcrgen <j@b\xc3\xbccher.example>\r\nTo: bob@example.test\r\nSubject: "
        + subject
        + b"\r\n\r\nHi\r\n"
    )
    items = "(ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[])"
    # RFC 6855 3, 5: an IMAP4rev1 client that did not enable UTF8=ACCEPT gets encoded-words and A-labels.
    client = RawClient(server)
    client.ok("SELECT INBOX")
    data = client.ok(f"FETCH 1 {items}")
    head, _, body = data.partition(b"BODY[] ")
    assert head.isascii()
    encoded = b'"=?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?="'
    assert b'ENVELOPE (NIL %s (("=?UTF-8?B?SsO8cmdlbg==?=" NIL "j" "xn--bcher-kva.example"))' % encoded in head
    assert (
        b"\r\nFrom: =?UTF-8?B?SsO8cmdlbg==?= <j@xn--bcher-kva.example>\r\n"
        b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?=\r\n\r\n" in head
    )
    assert b"Subject: " + subject in body  # the message itself stays as stored
    # Once enabled (UTF8=ACCEPT, or IMAP4rev2, which includes it), the header data as stored.
    for enable in ("UTF8=ACCEPT", "IMAP4rev2"):
        client = RawClient(server)
        client.ok(f"ENABLE {enable}")
        client.ok("SELECT INBOX")
        head = client.ok(f"FETCH 1 {items}").partition(b"BODY[] ")[0]
        assert b"{17}\r\n" + subject in head
        assert b"\r\nSubject: " + subject + b"\r\n" in head
