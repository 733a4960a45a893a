"""The IMAP protocol core, fed raw bytes: whole, and again one to three bytes at a time."""

from __future__ import annotations

import pytest

from imapd import mutf7
from imapd.protocol import (
    MAX_LINE,
    NEED_DATA,
    Atom,
    Bad,
    Command,
    Connection,
    Continue,
    Line,
    State,
    astring,
)
from mailcore.imap_wire import nstring, string

MAX_LITERAL = 1000


def run(data: bytes, *, chunk: int | None = None, state: State = State.AUTHENTICATED) -> list[object]:
    """Every event the connection produces for `data`, fed whole or in `chunk`-byte pieces."""
    conn = Connection(MAX_LITERAL)
    conn.state = state
    events: list[object] = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        conn.receive_data(piece)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
    return events


def both_ways(data: bytes, state: State = State.AUTHENTICATED) -> list[object]:
    whole = run(data, state=state)
    for size in (1, 2, 3):
        assert run(data, chunk=size, state=state) == whole, f"chunks of {size}"
    return whole


COMMANDS = [
    (b"a1 NOOP\r\n", Command("a1", "NOOP", [])),
    (b"a1 noop\r\n", Command("a1", "NOOP", [])),
    (b"A.1 NoOp\n", Command("A.1", "NOOP", [])),  # bare LF is tolerated
    (b"a1 NOOP   \r\n", Command("a1", "NOOP", [])),  # trailing spaces are tolerated
    (b"t RENAME alice secret\r\n", Command("t", "RENAME", [Atom("alice"), Atom("secret")])),
    (b't RENAME "al ice" "se\\"c\\\\ret"\r\n', Command("t", "RENAME", [b"al ice", b'se"c\\ret'])),
    (b"t  SELECT   INBOX\r\n", Command("t", "SELECT", [Atom("INBOX")])),  # extra spaces are tolerated
    (b"t SELECT {5}\r\nINBOX\r\n", Command("t", "SELECT", [b"INBOX"])),
    # "[" is an ATOM-CHAR outside a FETCH section (RFC 3501 9), "]" an ASTRING-CHAR.
    (b"t SELECT foo[bar\r\n", Command("t", "SELECT", [Atom("foo[bar")])),
    (b'a LIST "" foo[*\r\n', Command("a", "LIST", [b"", Atom("foo[*")])),
    (b"t SELECT {5+}\r\nINBOX\r\n", Command("t", "SELECT", [b"INBOX"])),
    (b"t SELECT {0}\r\n\r\n", Command("t", "SELECT", [b""])),
    (
        b"t RENAME {5}\r\nalice {3}\r\nx\r\n\r\n",
        Command("t", "RENAME", [b"alice", b"x\r\n"]),
    ),
    (
        b"t STATUS INBOX (MESSAGES  UIDNEXT)\r\n",
        Command("t", "STATUS", [Atom("INBOX"), [Atom("MESSAGES"), Atom("UIDNEXT")]]),
    ),
    (b't LIST "" *\r\n', Command("t", "LIST", [b"", Atom("*")])),
    (b't list "" %/%\r\n', Command("t", "LIST", [b"", Atom("%/%")])),
    (
        b"t UID fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n",
        Command(
            "t",
            "UID FETCH",
            [Atom("1:*"), [Atom("FLAGS"), Atom("BODY.PEEK[HEADER.FIELDS (From To)]<0.100>")]],
        ),
    ),
    (
        b't APPEND INBOX (\\Seen $Junk) "01-Jan-2024 10:00:00 +0000" {3+}\r\nabc\r\n',
        Command("t", "APPEND", [Atom("INBOX"), [Atom("\\Seen"), Atom("$Junk")], b"01-Jan-2024 10:00:00 +0000", b"abc"]),
    ),
    (b"t STORE 1 +FLAGS ()\r\n", Command("t", "STORE", [Atom("1"), Atom("+FLAGS"), []])),
    (b"t ENABLE ((a) (b (c)))\r\n", Command("t", "ENABLE", [[[Atom("a")], [Atom("b"), [Atom("c")]]]])),
]


@pytest.mark.parametrize(("raw", "expected"), COMMANDS)
def test_commands(raw: bytes, expected: Command | None) -> None:
    events = [e for e in both_ways(raw, State.SELECTED) if not isinstance(e, Continue)]
    if expected is None:
        assert len(events) == 1
        assert isinstance(events[0], Bad)
    else:
        assert events == [expected]


BAD_INPUT = [
    (b"a1 FROB\r\n", "a1", "Unknown command FROB"),
    (b"a1\r\n", "a1", "Missing command"),
    (b"\r\n", "*", "Missing or invalid tag"),
    (b"+ NOOP\r\n", "*", "Missing or invalid tag"),
    (b'a1 RENAME "alice\r\n', "a1", "Unterminated quoted string"),
    (b'a1 RENAME "al\\ice" x\r\n', "a1", "Invalid escape in quoted string"),
    (b"a1 STATUS INBOX (MESSAGES\r\n", "a1", "Unterminated list"),
    (b"a1 STATUS INBOX MESSAGES)\r\n", "a1", "Missing space between arguments"),
    (b"a1 RENAME {3}x\r\n", "a1", "Literal must end the line"),
    (b'a1 RENAME a"b"\r\n', "a1", "Missing space between arguments"),
    (b'a1 STATUS INBOX (a"b")\r\n', "a1", "Missing space in list"),
    (b"a1 RENAME caf\xc3\xa9 x\r\n", "a1", "8-bit characters in an atom"),
    (b"a1 FETCH 1 BODY[\r\n", "a1", "Unterminated ["),
    (b"a1 UID\r\n", "a1", "UID needs a command"),
    (b"a1 UID FROB 1\r\n", "a1", "Unknown command UID FROB"),
    (b"a1 LOGIN x y\r\n", "a1", "LOGIN is not allowed in the selected state"),
]


@pytest.mark.parametrize(("raw", "tag", "text"), BAD_INPUT)
def test_bad_input_gets_a_tagged_bad(raw: bytes, tag: str, text: str) -> None:
    assert both_ways(raw, State.SELECTED) == [Bad(tag, text)]


def test_a_bad_command_does_not_disturb_the_next() -> None:
    events = both_ways(b'a1 LOGIN "x\r\na2 NOOP\r\n')
    assert events == [Bad("a1", "Unterminated quoted string"), Command("a2", "NOOP", [])]


def test_synchronising_literal_asks_for_continuation_first() -> None:
    conn = Connection(MAX_LITERAL)
    conn.state = State.AUTHENTICATED
    conn.receive_data(b"t SELECT {5}\r\n")
    assert conn.next_event() == Continue()
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"INB")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"OX\r\n")
    assert conn.next_event() == Command("t", "SELECT", [b"INBOX"])


def test_non_synchronising_literal_needs_no_continuation() -> None:
    assert both_ways(b"t SELECT {5+}\r\nINBOX\r\n") == [Command("t", "SELECT", [b"INBOX"])]


def test_literal_over_the_limit_is_refused_before_it_is_read() -> None:
    raw = b"t APPEND INBOX {%d}\r\n" % (MAX_LITERAL + 1)
    [event] = both_ways(raw)
    assert event == Bad("t", f"[TOOBIG] Literal larger than the limit of {MAX_LITERAL} bytes")
    # The client does not send a refused synchronising literal; the next command is read normally.
    assert both_ways(raw + b"t2 NOOP\r\n")[1] == Command("t2", "NOOP", [])


def test_non_synchronising_literal_over_the_limit_is_fatal() -> None:
    [event] = both_ways(b"t APPEND INBOX {%d+}\r\n" % (MAX_LITERAL + 1))
    assert isinstance(event, Bad)
    assert event.fatal


def test_over_long_line_is_refused_and_skipped_without_buffering() -> None:
    conn = Connection(MAX_LITERAL)
    conn.receive_data(b"t1 LOGIN " + b"x" * MAX_LINE)
    assert conn.next_event() == Bad("t1", f"Command line too long (the limit is {MAX_LINE} bytes)")
    for _ in range(10):
        conn.receive_data(b"y" * MAX_LINE)
        assert conn.next_event() is NEED_DATA
        assert conn.buffered == 0
    conn.receive_data(b"yyy\r\nt2 NOOP\r\n")
    assert conn.next_event() == Command("t2", "NOOP", [])


def test_states_admit_their_commands() -> None:
    assert both_ways(b"a SELECT INBOX\r\n", State.NOT_AUTHENTICATED) == [
        Bad("a", "SELECT is not allowed in the not authenticated state")
    ]
    assert both_ways(b"a LOGIN u p\r\n", State.NOT_AUTHENTICATED) == [Command("a", "LOGIN", [Atom("u"), Atom("p")])]
    assert both_ways(b"a UID FETCH 1 FLAGS\r\n", State.SELECTED)[0].name == "UID FETCH"
    assert both_ways(b"a CAPABILITY\r\n", State.LOGOUT) == [Bad("a", "CAPABILITY is not allowed in the logout state")]


def test_expected_line_is_returned_raw() -> None:
    conn = Connection(MAX_LITERAL)
    conn.expect_line()
    conn.receive_data(b"DONE\r\na NOOP\r\n")
    assert conn.next_event() == Line(b"DONE")
    assert conn.next_event() == Command("a", "NOOP", [])


def test_discard_buffer_drops_pipelined_plaintext() -> None:
    conn = Connection(MAX_LITERAL)
    conn.receive_data(b"a STARTTLS\r\nb LOGIN u p\r\n")
    assert conn.next_event() == Command("a", "STARTTLS", [])
    conn.discard_buffer()
    assert conn.next_event() is NEED_DATA


RENDERED = [
    ("INBOX", b'"INBOX"'),
    ('a"b\\c', b'"a\\"b\\\\c"'),
    ("caf\u00e9", b"{5}\r\ncaf\xc3\xa9"),
    ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
    (None, b"NIL"),
]


@pytest.mark.parametrize(("value", "wire"), RENDERED)
def test_strings_render_quoted_or_literal(value: str | None, wire: bytes) -> None:
    assert nstring(value) == wire


def test_long_strings_become_literals() -> None:
    assert string("x" * 2000).startswith(b"{2000}\r\n")


def test_astring() -> None:
    assert astring(Atom("INBOX")) == "INBOX"
    assert astring(b"Sent Items") == "Sent Items"


MUTF7 = [
    ("INBOX", "INBOX"),
    ("a&b", "a&-b"),
    ("Entw\u00fcrfe", "Entw&APw-rfe"),
    ("\u65e5\u672c\u8a9e", "&ZeVnLIqe-"),
    ("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("\U0001f600", "&2D3eAA-"),
]


@pytest.mark.parametrize(("text", "wire"), MUTF7)
def test_modified_utf7_round_trip(text: str, wire: str) -> None:
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text


@pytest.mark.parametrize("wire", ["&", "&Jjo", "&AGE-", "&Jjo!-", "caf\u00e9", "&ZeVnLIqe=-", "&A-"])
def test_modified_utf7_rejects_malformed(wire: str) -> None:
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode(wire)
