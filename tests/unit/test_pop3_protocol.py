"""The POP3 protocol core, byte for byte: every input is fed whole and again one byte at a time."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from mailcore.crlf import crlf_size
from pop3d.protocol import (
    NEED_DATA,
    Authenticate,
    Close,
    Maildrop,
    Pop3Connection,
    Retrieve,
    ScanEntry,
    StartTLS,
    State,
    Update,
)

BODIES = {
    10: b"Subject: one\r\n\r\nhello\r\n",
    11: b"Subject: two\r\n\r\n.starts with a dot\r\n..two dots\r\nlast\r\n",
    12: b"Subject: three\n\nbare LF line endings\n",  # as an IMAP APPEND may store it
}
MAILDROP = Maildrop(777, tuple(ScanEntry(uid, crlf_size(raw), uid * 100) for uid, raw in BODIES.items()))
S1, S2, S3 = (entry.size for entry in MAILDROP.entries)
LOGIN = b"USER alice\r\nPASS secret\r\n"


def plain(authzid: str, authcid: str, password: str) -> bytes:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode())


class Harness:
    """Drives a connection and answers its events the way the server does, recording them."""

    def __init__(self, *, update_ok: bool = True, **options) -> None:
        options = {"tls": False, "stls_available": True, "plaintext_allowed": True, "hostname": "pop.test"} | options
        self.conn = Pop3Connection(**options)
        self.events: list[object] = []
        self.update_ok = update_ok
        self.closed = False
        self.greeting = self.conn.data_to_send()

    def feed(self, data: bytes, *, bytewise: bool) -> bytes:
        chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
        out = bytearray()
        for chunk in chunks:
            self.conn.receive_data(chunk)
            out += self._drain()
        return bytes(out)

    def _drain(self) -> bytes:
        out = bytearray()
        while not self.closed:
            event = self.conn.next_event()
            if event is NEED_DATA:
                break
            self.events.append(event)
            self._answer(event)
            out += self.conn.data_to_send()
        return bytes(out + self.conn.data_to_send())

    def _answer(self, event: object) -> None:
        if isinstance(event, Authenticate):
            if (event.username, event.password) == ("alice", "secret"):
                self.conn.login_succeeded(MAILDROP)
            else:
                self.conn.login_failed()
        elif isinstance(event, Retrieve):
            self.conn.send_message(BODIES[event.entry.uid], event.lines)
        elif isinstance(event, StartTLS):
            self.conn.tls_started()
        elif isinstance(event, Update):
            self.conn.update_finished(self.update_ok)
        elif isinstance(event, Close):
            self.closed = True


def logged_in(**options) -> Harness:
    harness = Harness(**options)
    assert harness.feed(LOGIN, bytewise=False) == b"+OK Send PASS\r\n+OK Logged in, 3 messages\r\n"
    harness.events.clear()
    return harness


CAPA_PLAIN = (
    b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
    b"USER\r\nSASL PLAIN\r\nSTLS\r\nIMPLEMENTATION Mailsite\r\n.\r\n"
)
CAPA_TRANSACTION = (
    b"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
    b"IMPLEMENTATION Mailsite\r\n.\r\n"
)
REFUSED = b"-ERR [AUTH] Plain-text authentication needs TLS; use STLS first\r\n"
LOGGED_IN = b"+OK Logged in, 3 messages\r\n"
AUTH_FAILED = b"-ERR [AUTH] Authentication failed\r\n"

AUTHORIZATION_CASES: list[tuple[str, dict, bytes, bytes]] = [
    ("capa", {}, b"CAPA\r\n", CAPA_PLAIN),
    ("capa lower case", {}, b"capa\r\n", CAPA_PLAIN),
    ("capa bare LF", {}, b"CAPA\n", CAPA_PLAIN),
    ("capa with argument", {}, b"CAPA x\r\n", b"-ERR CAPA takes no arguments\r\n"),
    (
        "capa without plain-text permission offers no password login",
        {"plaintext_allowed": False},
        b"CAPA\r\n",
        CAPA_PLAIN.replace(b"USER\r\nSASL PLAIN\r\n", b""),
    ),
    (
        "capa under TLS offers no STLS",
        {"tls": True, "plaintext_allowed": False},
        b"CAPA\r\n",
        CAPA_PLAIN.replace(b"STLS\r\n", b""),
    ),
    ("user then pass", {}, LOGIN, b"+OK Send PASS\r\n" + LOGGED_IN),
    ("user lower case", {}, b"user alice\r\npass secret\r\n", b"+OK Send PASS\r\n" + LOGGED_IN),
    ("wrong password", {}, b"USER alice\r\nPASS nope\r\n", b"+OK Send PASS\r\n" + AUTH_FAILED),
    (
        "retry after failure",
        {},
        b"USER alice\r\nPASS x\r\n" + LOGIN,
        b"+OK Send PASS\r\n" + AUTH_FAILED + b"+OK Send PASS\r\n" + LOGGED_IN,
    ),
    ("pass without user", {}, b"PASS secret\r\n", b"-ERR Send USER first\r\n"),
    (
        "pass needs a fresh user",
        {},
        b"USER alice\r\nPASS x\r\nPASS secret\r\n",
        b"+OK Send PASS\r\n" + AUTH_FAILED + b"-ERR Send USER first\r\n",
    ),
    ("user without name", {}, b"USER\r\n", b"-ERR Syntax: USER name\r\n"),
    ("user with two words", {}, b"USER a b\r\n", b"-ERR Syntax: USER name\r\n"),
    ("user refused without TLS", {"plaintext_allowed": False}, b"USER alice\r\n", REFUSED),
    ("user allowed under TLS", {"tls": True, "plaintext_allowed": False}, LOGIN, b"+OK Send PASS\r\n" + LOGGED_IN),
    ("transaction command before login", {}, b"STAT\r\n", b"-ERR STAT is not allowed in the authorization state\r\n"),
    ("unknown command", {}, b"HELO\r\n", b"-ERR Unknown command\r\n"),
    ("empty line", {}, b"\r\n", b"-ERR Unknown command\r\n"),
    ("not UTF-8", {}, b"USER \xff\r\n", b"-ERR Command line is not valid UTF-8\r\n"),
    ("quit", {}, b"QUIT\r\n", b"+OK Logging out\r\n"),
    ("nothing after quit is read", {}, b"QUIT\r\nCAPA\r\n", b"+OK Logging out\r\n"),
    ("auth lists mechanisms", {}, b"AUTH\r\n", b"+OK Supported mechanisms follow\r\nPLAIN\r\n.\r\n"),
    (
        "auth lists none without TLS",
        {"plaintext_allowed": False},
        b"AUTH\r\n",
        b"+OK Supported mechanisms follow\r\n.\r\n",
    ),
    ("auth plain initial response", {}, b"AUTH PLAIN " + plain("", "alice", "secret") + b"\r\n", LOGGED_IN),
    ("auth plain mechanism case", {}, b"auth plain " + plain("", "alice", "secret") + b"\r\n", LOGGED_IN),
    ("auth plain continuation", {}, b"AUTH PLAIN\r\n" + plain("", "alice", "secret") + b"\r\n", b"+ \r\n" + LOGGED_IN),
    ("auth plain same authzid", {}, b"AUTH PLAIN " + plain("alice", "alice", "secret") + b"\r\n", LOGGED_IN),
    ("auth plain other authzid", {}, b"AUTH PLAIN " + plain("bob", "alice", "secret") + b"\r\n", AUTH_FAILED),
    ("auth plain wrong password", {}, b"AUTH PLAIN " + plain("", "alice", "x") + b"\r\n", AUTH_FAILED),
    ("auth plain empty initial response", {}, b"AUTH PLAIN =\r\n", AUTH_FAILED),
    (
        "auth plain cancelled",
        {},
        b"AUTH PLAIN\r\n*\r\nCAPA\r\n",
        b"+ \r\n-ERR Authentication cancelled\r\n" + CAPA_PLAIN,
    ),
    ("auth plain bad base64", {}, b"AUTH PLAIN !!!!\r\n", b"-ERR Invalid base64 in SASL response\r\n"),
    ("auth unknown mechanism", {}, b"AUTH CRAM-MD5\r\n", b"-ERR Unsupported authentication mechanism\r\n"),
    ("auth plain refused without TLS", {"plaintext_allowed": False}, b"AUTH PLAIN =\r\n", REFUSED),
    ("stls", {}, b"STLS\r\n", b"+OK Begin TLS negotiation\r\n"),
    ("stls then capa", {}, b"STLS\r\nCAPA\r\n", b"+OK Begin TLS negotiation\r\n"),  # pipelined plain text dropped
    ("stls under TLS", {"tls": True}, b"STLS\r\n", b"-ERR TLS is active already\r\n"),
    (
        "stls on implicit-TLS port",
        {"tls": True, "stls_available": False},
        b"STLS\r\n",
        b"-ERR TLS is active already\r\n",
    ),
    ("stls unavailable", {"stls_available": False}, b"STLS\r\n", b"-ERR STLS is not available\r\n"),
    ("longest command line", {}, b"USER " + b"a" * 248 + b"\r\n", b"+OK Send PASS\r\n"),
    (
        "command line too long",
        {},
        b"USER " + b"a" * 249 + b"\r\nCAPA\r\n",
        b"-ERR Line too long\r\n" + CAPA_PLAIN,
    ),
    ("flood without line end", {}, b"x" * 5000 + b"\r\nQUIT\r\n", b"-ERR Line too long\r\n+OK Logging out\r\n"),
    (
        "SASL response may exceed the command limit",
        {},
        b"AUTH PLAIN\r\n" + plain("", "alice", "p" * 400) + b"\r\n",
        b"+ \r\n" + AUTH_FAILED,
    ),
]

TRANSACTION_CASES: list[tuple[str, bytes, bytes]] = [
    ("stat", b"STAT\r\n", f"+OK 3 {S1 + S2 + S3}\r\n".encode()),
    ("stat with argument", b"STAT 1\r\n", b"-ERR STAT takes no arguments\r\n"),
    ("list", b"LIST\r\n", f"+OK 3 messages ({S1 + S2 + S3} octets)\r\n1 {S1}\r\n2 {S2}\r\n3 {S3}\r\n.\r\n".encode()),
    ("list one", b"LIST 2\r\n", f"+OK 2 {S2}\r\n".encode()),
    ("list lower case", b"list 3\r\n", f"+OK 3 {S3}\r\n".encode()),
    ("list past the end", b"LIST 4\r\n", b"-ERR No message 4\r\n"),
    ("list zero", b"LIST 0\r\n", b"-ERR No message 0\r\n"),
    ("list word", b"LIST one\r\n", b"-ERR Syntax: a message number is expected\r\n"),
    ("list signed", b"LIST +1\r\n", b"-ERR Syntax: a message number is expected\r\n"),
    ("list negative", b"LIST -1\r\n", b"-ERR Syntax: a message number is expected\r\n"),
    ("list non-ASCII digit", "LIST \u00b2\r\n".encode(), b"-ERR Syntax: a message number is expected\r\n"),
    ("list huge number", b"LIST 99999999999999\r\n", b"-ERR Syntax: a message number is expected\r\n"),
    ("uidl", b"UIDL\r\n", b"+OK Unique-id listing follows\r\n1 777.10\r\n2 777.11\r\n3 777.12\r\n.\r\n"),
    ("uidl one", b"UIDL 3\r\n", b"+OK 3 777.12\r\n"),
    ("retr", b"RETR 1\r\n", f"+OK {S1} octets\r\n".encode() + BODIES[10] + b".\r\n"),
    (
        "retr byte-stuffs lines starting with a dot",
        b"RETR 2\r\n",
        f"+OK {S2} octets\r\n".encode() + b"Subject: two\r\n\r\n..starts with a dot\r\n...two dots\r\nlast\r\n.\r\n",
    ),
    (
        "retr sends CRLF and as many octets as LIST says",
        b"RETR 3\r\n",
        f"+OK {S3} octets\r\n".encode() + b"Subject: three\r\n\r\nbare LF line endings\r\n.\r\n",
    ),
    ("retr missing number", b"RETR\r\n", b"-ERR Syntax: a message number is expected\r\n"),
    ("top 0", b"TOP 1 0\r\n", b"+OK\r\nSubject: one\r\n\r\n.\r\n"),
    ("top 1 stuffs", b"TOP 2 1\r\n", b"+OK\r\nSubject: two\r\n\r\n..starts with a dot\r\n.\r\n"),
    ("top beyond the end", b"TOP 1 50\r\n", b"+OK\r\n" + BODIES[10] + b".\r\n"),
    ("top without lines", b"TOP 1\r\n", b"-ERR Syntax: TOP message lines\r\n"),
    ("top bad lines", b"TOP 1 x\r\n", b"-ERR Syntax: TOP message lines\r\n"),
    ("top no such message", b"TOP 9 0\r\n", b"-ERR No message 9\r\n"),
    ("dele then stat", b"DELE 1\r\nSTAT\r\n", f"+OK Message 1 deleted\r\n+OK 2 {S2 + S3}\r\n".encode()),
    ("dele twice", b"DELE 1\r\nDELE 1\r\n", b"+OK Message 1 deleted\r\n-ERR Message 1 is deleted\r\n"),
    ("retr deleted", b"DELE 2\r\nRETR 2\r\n", b"+OK Message 2 deleted\r\n-ERR Message 2 is deleted\r\n"),
    (
        "list skips deleted",
        b"DELE 2\r\nLIST\r\n",
        f"+OK Message 2 deleted\r\n+OK 2 messages ({S1 + S3} octets)\r\n1 {S1}\r\n3 {S3}\r\n.\r\n".encode(),
    ),
    (
        "uidl skips deleted",
        b"DELE 1\r\nUIDL\r\n",
        b"+OK Message 1 deleted\r\n+OK Unique-id listing follows\r\n2 777.11\r\n3 777.12\r\n.\r\n",
    ),
    (
        "rset undeletes",
        b"DELE 1\r\nRSET\r\nLIST 1\r\n",
        f"+OK Message 1 deleted\r\n+OK 3 messages\r\n+OK 1 {S1}\r\n".encode(),
    ),
    ("noop", b"NOOP\r\n", b"+OK\r\n"),
    ("noop with argument", b"NOOP x\r\n", b"-ERR NOOP takes no arguments\r\n"),
    ("capa", b"CAPA\r\n", CAPA_TRANSACTION),
    ("user again", b"USER bob\r\n", b"-ERR Already authenticated\r\n"),
    ("stls after login", b"STLS\r\n", b"-ERR Already authenticated\r\n"),
    ("quit without deletions", b"QUIT\r\n", b"+OK Logging out\r\n"),
    (
        "quit with deletions",
        b"DELE 3\r\nDELE 1\r\nQUIT\r\n",
        b"+OK Message 3 deleted\r\n+OK Message 1 deleted\r\n+OK Logging out, 2 messages deleted\r\n",
    ),
    (
        "pipelined commands answered in order",
        b"STAT\r\nUIDL 1\r\nRETR 1\r\nDELE 1\r\nNOOP\r\n",
        f"+OK 3 {S1 + S2 + S3}\r\n+OK 1 777.10\r\n+OK {S1} octets\r\n".encode()
        + BODIES[10]
        + b".\r\n+OK Message 1 deleted\r\n+OK\r\n",
    ),
    ("long line in transaction", b"NOOP " + b" " * 300 + b"\r\nNOOP\r\n", b"-ERR Line too long\r\n+OK\r\n"),
]


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize(
    ("options", "data", "expected"), [c[1:] for c in AUTHORIZATION_CASES], ids=[c[0] for c in AUTHORIZATION_CASES]
)
def test_authorization_state(options: dict, data: bytes, expected: bytes, bytewise: bool) -> None:
    harness = Harness(**options)
    if bytewise and data.startswith(b"STLS\r\n") and len(data) > 6:
        # Bytes arriving after the TLS handshake are not the plain-text ones STLS discards.
        expected += CAPA_PLAIN.replace(b"STLS\r\n", b"")
    assert harness.feed(data, bytewise=bytewise) == expected


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in TRANSACTION_CASES], ids=[c[0] for c in TRANSACTION_CASES]
)
def test_transaction_state(data: bytes, expected: bytes, bytewise: bool) -> None:
    assert logged_in().feed(data, bytewise=bytewise) == expected


def test_greeting() -> None:
    assert Harness().greeting == b"+OK pop.test POP3 server ready\r\n"


def test_pass_keeps_spaces_in_the_password() -> None:
    harness = Harness()
    harness.feed(b"USER alice\r\nPASS  two words \r\n", bytewise=False)
    assert harness.events == [Authenticate("alice", " two words ")]


def test_quit_asks_to_delete_marked_uids_in_order() -> None:
    harness = logged_in()
    harness.feed(b"DELE 3\r\nDELE 1\r\nQUIT\r\n", bytewise=False)
    assert harness.events == [Update((10, 12)), Close()]
    assert harness.conn.state is State.CLOSED


def test_quit_without_deletions_skips_update() -> None:
    harness = logged_in()
    harness.feed(b"DELE 1\r\nRSET\r\nQUIT\r\n", bytewise=False)
    assert harness.events == [Close()]


def test_failed_update_is_an_error() -> None:
    harness = logged_in(update_ok=False)
    out = harness.feed(b"DELE 1\r\nQUIT\r\n", bytewise=False)
    assert out == b"+OK Message 1 deleted\r\n-ERR [SYS/TEMP] Deleting messages failed, none were removed\r\n"


def test_retrieve_event_names_message_and_lines() -> None:
    harness = logged_in()
    harness.feed(b"RETR 2\r\nTOP 3 5\r\n", bytewise=False)
    assert harness.events == [Retrieve(2, MAILDROP.entries[1], None), Retrieve(3, MAILDROP.entries[2], 5)]


def test_no_command_is_parsed_while_an_event_is_outstanding() -> None:
    conn = Pop3Connection(tls=False, stls_available=True, plaintext_allowed=True)
    conn.receive_data(b"USER alice\r\nPASS secret\r\nSTAT\r\n")
    assert isinstance(conn.next_event(), Authenticate)
    with pytest.raises(RuntimeError):
        conn.next_event()
    with pytest.raises(RuntimeError):
        conn.send_message(b"", None)
    conn.login_succeeded(MAILDROP)
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send().endswith(b"+OK Logged in, 3 messages\r\n" + f"+OK 3 {S1 + S2 + S3}\r\n".encode())


@pytest.mark.parametrize(
    ("outcome", "reply"),
    [
        (Pop3Connection.maildrop_in_use, b"-ERR [IN-USE] Mailbox is in use by another POP3 session\r\n"),
        (Pop3Connection.temporary_failure, b"-ERR [SYS/TEMP] Temporary failure, try again later\r\n"),
    ],
)
def test_login_outcomes_keep_authorization_state(outcome: Callable[[Pop3Connection], None], reply: bytes) -> None:
    conn = Pop3Connection(tls=False, stls_available=True, plaintext_allowed=True)
    conn.data_to_send()
    conn.receive_data(LOGIN)
    assert isinstance(conn.next_event(), Authenticate)
    outcome(conn)
    assert conn.data_to_send() == b"+OK Send PASS\r\n" + reply
    assert conn.state is State.AUTHORIZATION


def test_vanished_message() -> None:
    conn = logged_in().conn
    conn.receive_data(b"RETR 1\r\n")
    assert isinstance(conn.next_event(), Retrieve)
    conn.message_unavailable(1)
    assert conn.data_to_send() == b"-ERR Message 1 no longer exists\r\n"


def test_autologout() -> None:
    conn = logged_in().conn
    conn.receive_data(b"DELE 1\r\n")
    conn.timed_out()
    assert conn.data_to_send() == b"-ERR Autologout: idle for too long\r\n"
    assert conn.next_event() == Close()  # the pending DELE and the marks die with the session


def test_capa_after_stls_drops_stls() -> None:
    harness = Harness(plaintext_allowed=False)
    harness.feed(b"STLS\r\n", bytewise=False)
    assert harness.conn.tls
    assert harness.feed(b"CAPA\r\n", bytewise=False) == CAPA_PLAIN.replace(b"STLS\r\n", b"")


def test_each_known_command_is_told_to_the_shell() -> None:
    told: list[str] = []
    conn = Pop3Connection(tls=False, stls_available=True, plaintext_allowed=True, on_command=told.append)
    conn.receive_data(b"capa\r\nSTAT\r\nXYZZY\r\nNOOP\r\n")
    assert conn.next_event() is NEED_DATA
    assert told == ["CAPA", "STAT", "NOOP"], "known commands, even where the state refuses them; XYZZY is not"


def test_a_message_as_long_as_its_scan_size_goes_as_stored() -> None:
    """The scan size is the length once every line ends in CRLF (counted when the message was stored); a message
    that long has no bare LF, so RETR sends its bytes without a scan for one. Here the listing claims a message
    with a bare LF is CRLF already (the store never does): its bytes go unchanged, as many as LIST said."""
    raw = b"Subject: trusted\r\n\r\nbare\nLF\r\n"
    conn = Pop3Connection(tls=False, stls_available=True, plaintext_allowed=True)
    conn.receive_data(LOGIN + b"RETR 1\r\nTOP 1 1\r\n")
    assert isinstance(conn.next_event(), Authenticate)
    conn.login_succeeded(Maildrop(1, (ScanEntry(10, len(raw), 1000),)))
    assert isinstance(conn.next_event(), Retrieve)
    conn.send_message(raw, None)
    assert isinstance(conn.next_event(), Retrieve)
    conn.send_message(raw[:-4], 1)  # TOP sends the head it is given, converted as before
    assert conn.data_to_send().endswith(
        f"+OK {len(raw)} octets\r\n".encode() + raw + b".\r\n" + b"+OK\r\nSubject: trusted\r\n\r\nbare\r\n.\r\n"
    )
