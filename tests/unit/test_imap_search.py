"""The SEARCH parser (imapd.search_keys) fed raw command bytes, whole and in small chunks, and the ESEARCH and
SEARCHRES result forms (RFC 4731, RFC 5182 examples)."""

from __future__ import annotations

import datetime
import sys

import pytest

from imapd import search_keys as k
from imapd.commands.searching import esearch_response, saved_result
from imapd.protocol import NEED_DATA, Bad, Command, Connection, ParseError, State
from imapd.search_sql import _sqlite_sent_day
from imapd.sequence import STAR


def command(data: bytes, chunk: int | None = None) -> Command:
    conn = Connection(10_000)
    conn.state = State.SELECTED
    events = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        conn.receive_data(piece)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
    (event,) = [e for e in events if isinstance(e, Command | Bad)]
    assert isinstance(event, Command), event
    return event


def parse(data: bytes) -> k.Search:
    """Parse `data` fed whole, and check the same result comes from chunks of 1, 2 and 7 bytes."""
    whole = k.parse(command(data).args)
    for size in (1, 2, 7):
        assert k.parse(command(data, size).args) == whole, f"chunks of {size}"
    return whole


UNSEEN = k.Flag("seen", False)
JAN2 = datetime.date(2024, 1, 2)

CASES = [
    (b"a SEARCH ALL\r\n", k.All()),
    (b"a search all\r\n", k.All()),
    (b"a SeArCh UnSeEn\r\n", UNSEEN),
    (b"a SEARCH   SEEN    FLAGGED  \r\n", k.And((k.Flag("seen", True), k.Flag("flagged", True)))),
    (b"a UID SEARCH NEW\n", k.And((k.Recent(), UNSEEN))),
    (b"a SEARCH OLD\r\n", k.Not(k.Recent())),
    (b"a SEARCH NOT NOT DELETED\r\n", k.Not(k.Not(k.Flag("deleted", True)))),
    (
        b"a SEARCH OR SEEN (FLAGGED DRAFT)\r\n",
        k.Or(k.Flag("seen", True), k.And((k.Flag("flagged", True), k.Flag("draft", True)))),
    ),
    (b"a SEARCH ((ANSWERED))\r\n", k.Flag("answered", True)),
    (b"a SEARCH KEYWORD $Later\r\n", k.Keyword("$Later")),
    (b"a SEARCH unkeyword \\Seen\r\n", k.Not(k.Keyword("\\Seen"))),
    (b'a SEARCH FROM "Bob Example"\r\n', k.Header("from", "Bob Example")),
    (b"a SEARCH subject {5}\r\nhello\r\n", k.Header("subject", "hello")),
    (b'a SEARCH HEADER X-Tracking ""\r\n', k.Header("x-tracking", "")),
    (b'a SEARCH CHARSET utf-8 BODY "K\xc3\xb6ln"\r\n', k.Body("Köln")),
    (b"a SEARCH TEXT hello\r\n", k.Text("hello")),
    (b"a SEARCH LARGER 500 SMALLER 1000\r\n", k.And((k.Size(True, 500), k.Size(False, 1000)))),
    (b"a SEARCH before 2-Jan-2024\r\n", k.Date(False, "before", JAN2)),
    (b'a SEARCH ON "02-JAN-2024"\r\n', k.Date(False, "on", JAN2)),
    (b"a SEARCH SINCE 2-jan-2024\r\n", k.Date(False, "since", JAN2)),
    (b"a SEARCH SENTBEFORE 2-Jan-2024\r\n", k.Date(True, "before", JAN2)),
    (b"a SEARCH SENTON 2-Jan-2024\r\n", k.Date(True, "on", JAN2)),
    (b"a SEARCH SENTSINCE 2-Jan-2024\r\n", k.Date(True, "since", JAN2)),
    (b"a SEARCH 1:3,5\r\n", k.Messages(((1, 3), (5, 5)), by_uid=False)),
    (b"a SEARCH UID 4:*\r\n", k.Messages(((4, STAR),), by_uid=True)),
    (b"a SEARCH $\r\n", k.Saved()),
    (b"a SEARCH UID $\r\n", k.Saved()),
    (b"a SEARCH MODSEQ 620162338\r\n", k.ModSeq(620162338)),
    # RFC 7162 3.1.5's example: an entry name and type before the value.
    (b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n', k.ModSeq(620162338)),
]


@pytest.mark.parametrize(("data", "key"), CASES, ids=[c[0].decode("latin-1").strip() for c in CASES])
def test_keys(data: bytes, key: k.Key) -> None:
    assert parse(data).key == key


def test_charset_and_return_options() -> None:
    search = parse(b"a SEARCH RETURN (min Count) CHARSET UTF-8 ALL\r\n")
    assert search == k.Search(k.All(), "UTF-8", ("MIN", "COUNT"))
    # RFC 4731 3.1: RETURN () is RETURN (ALL).
    assert parse(b"a SEARCH RETURN () ALL\r\n").returns == ("ALL",)
    assert parse(b"a SEARCH ALL\r\n").returns is None
    with pytest.raises(k.BadCharset):
        parse(b"a SEARCH CHARSET KOI8-R ALL\r\n")


BAD = [
    b"a SEARCH\r\n",
    b"a SEARCH FROBNICATE\r\n",
    b"a SEARCH NOT\r\n",
    b"a SEARCH OR SEEN\r\n",
    b"a SEARCH ()\r\n",
    b"a SEARCH LARGER x\r\n",
    b"a SEARCH SMALLER -1\r\n",
    b"a SEARCH ON 31-Feb-2024\r\n",
    b"a SEARCH ON 2024-01-02\r\n",
    b"a SEARCH HEADER Bad:Name x\r\n",
    b"a SEARCH 0:3\r\n",
    b"a SEARCH RETURN (FANCY) ALL\r\n",
    b"a SEARCH RETURN MIN ALL\r\n",
    b'a SEARCH MODSEQ "/flags/x" nonsense 5\r\n',
]


@pytest.mark.parametrize("data", BAD, ids=[b.decode().strip() for b in BAD])
def test_bad_input_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(data)


def test_deep_nesting_is_refused_before_the_recursion_limit() -> None:
    # The 20 KB input of the issue: far more levels than Python's recursion limit allows.
    data = b"a SEARCH " + b"NOT " * 5000 + b"ALL\r\n"
    assert sys.getrecursionlimit() // 2 < 5000
    with pytest.raises(ParseError, match="nested too deeply"):
        k.parse(command(data).args)
    with pytest.raises(ParseError, match="nested too deeply"):
        k.parse(command(b"a SEARCH " + b"OR ALL " * 5000 + b"ALL\r\n").args)
    # The limit itself is accepted.
    ok = k.parse(command(b"a SEARCH " + b"NOT " * k.MAX_DEPTH + b"ALL\r\n").args)
    assert isinstance(ok.key, k.Not)


def test_too_many_keys_are_refused() -> None:
    with pytest.raises(ParseError, match="Too many search keys"):
        k.parse(command(b"a SEARCH " + b"SEEN " * (k.MAX_KEYS + 1) + b"\r\n").args)


def test_esearch_responses_from_rfc_4731() -> None:
    # RFC 4731 3.1 examples.
    assert esearch_response("A282", False, ("MIN", "COUNT"), [2, 10, 11]) == b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    assert esearch_response("A283", False, ("ALL",), [2, 10, 11]) == b'* ESEARCH (TAG "A283") ALL 2,10:11\r\n'
    assert esearch_response("A284", False, ("MIN",), []) == b'* ESEARCH (TAG "A284")\r\n'
    assert (
        esearch_response("A285", True, ("MIN", "MAX"), [7, 11, 3800])
        == b'* ESEARCH (TAG "A285") UID MIN 7 MAX 3800\r\n'
    )
    assert esearch_response("A286", False, ("COUNT",), []) == b'* ESEARCH (TAG "A286") COUNT 0\r\n'


def test_saved_result_of_searchres() -> None:
    # RFC 5182 2.4: MIN/MAX alone save only those; with ALL or COUNT (or SAVE alone) everything is saved.
    assert saved_result(("SAVE",), [3, 5, 9]) == [3, 5, 9]
    assert saved_result(("SAVE", "MIN"), [3, 5, 9]) == [3]
    assert saved_result(("MAX", "SAVE", "MIN"), [3, 5, 9]) == [3, 9]
    assert saved_result(("SAVE", "MIN", "COUNT"), [3, 5, 9]) == [3, 5, 9]
    assert saved_result(("SAVE", "MIN"), []) == []


def test_sqlite_sent_day_takes_the_header_zone() -> None:
    # 04:30 UTC on 2 Jan is 1 Jan in New York; 22:30 UTC on 1 Jan is 2 Jan at +0200.
    assert _sqlite_sent_day("2024-01-02 04:30:00", "Mon, 01 Jan 2024 23:30:00 -0500 (EST)", "x") == "2024-01-01"
    assert _sqlite_sent_day("2024-01-01 22:30:00", "Tue, 2 Jan 2024 00:30:00 +0200", "x") == "2024-01-02"
    assert _sqlite_sent_day("2024-01-02 05:30:00", "2 Jan 2024 00:30 EST", "x") == "2024-01-02"
    assert _sqlite_sent_day("2024-01-02 00:30:00", "2 Jan 2024 00:30 GMT", "x") == "2024-01-02"
    assert _sqlite_sent_day(None, None, "2024-03-01 23:00:00") == "2024-03-01"
