"""CONDSTORE/QRESYNC arguments (RFC 7162) and QUOTA responses (RFC 9208), parsed and rendered without I/O."""

from __future__ import annotations

import pytest

from imapd import fetch, sequence, store
from imapd.commands.folders import _resync
from imapd.commands.quota import quota_response
from imapd.protocol import Atom, ParseError
from imapd.sequence import STAR
from imapd.store import Usage


def test_fetch_modifiers() -> None:
    # RFC 7162 3.1.4.2 example: FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)
    assert fetch.parse_modifiers([Atom("CHANGEDSINCE"), Atom("12345")]) == fetch.Modifiers(12345, False)
    # RFC 7162 3.2.6 example: UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)
    assert fetch.parse_modifiers([Atom("changedsince"), Atom("12345"), Atom("vanished")]) == fetch.Modifiers(
        12345, True
    )
    assert fetch.parse_modifiers(None) == fetch.Modifiers()
    for bad in ([Atom("VANISHED")], [Atom("CHANGEDSINCE")], [Atom("CHANGEDSINCE"), Atom("-1")], [Atom("X")], []):
        with pytest.raises(ParseError):
            fetch.parse_modifiers(bad)
    with pytest.raises(ParseError):
        fetch.mod_sequence(Atom(str(2**63)))
    assert fetch.mod_sequence(Atom(str(2**63 - 1))) == 2**63 - 1


def test_qresync_select_parameter() -> None:
    # RFC 7162 3.2.5.2 example: SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))
    resync = _resync([Atom("67890007"), Atom("20050715194045000"), Atom("41,43:211,214:541")])
    assert resync == store.Resync(67890007, 20050715194045000, [(41, 41), (43, 211), (214, 541)])
    # With sequence match data, which is accepted and not needed.
    resync = _resync([Atom("1"), Atom("5"), Atom("1:*"), [Atom("1:3"), Atom("2,4,6")]])
    assert resync.known_uids == [(1, STAR)]
    assert _resync([Atom("1"), Atom("5")]).known_uids is None
    for bad in ([Atom("1")], [Atom("x"), Atom("5")], [Atom("1"), Atom("5"), Atom("1:*"), Atom("2")]):
        with pytest.raises(ParseError):
            _resync(bad)


def test_quota_response() -> None:
    # RFC 9208 5.1: usage and limit in units of 1024 octets; usage rounded up.
    assert quota_response(Usage(0, 10 * 1024, 5, 0)) == b'* QUOTA "" (STORAGE 0 10)\r\n'
    assert quota_response(Usage(1, 10 * 1024 + 1023, 5, 0)) == b'* QUOTA "" (STORAGE 1 10)\r\n'
    assert quota_response(Usage(2048, 4096, 5, 0)) == b'* QUOTA "" (STORAGE 2 4)\r\n'
    # RFC 9208 5.2: MESSAGE counts messages, with no unit; a resource without a limit is not listed.
    assert quota_response(Usage(2048, 4096, 5, 7)) == b'* QUOTA "" (STORAGE 2 4 MESSAGE 5 7)\r\n'
    assert quota_response(Usage(2048, 0, 0, 7)) == b'* QUOTA "" (MESSAGE 0 7)\r\n'


@pytest.mark.parametrize(
    ("ranges", "uids", "gone"),
    [
        ([(1, 10)], [2, 3, 7], [(1, 1), (4, 6), (8, 10)]),
        ([(1, 5), (3, 9)], [4], [(1, 3), (5, 9)]),  # overlapping ranges: each gap once
        ([(7, 9), (1, 3)], [], [(1, 3), (7, 9)]),  # unordered, as a client may write them
        ([(1, 3), (4, 6)], [], [(1, 6)]),  # touching ranges merge
        ([(5, 5)], [5], []),
        ([(1, 4)], [1, 2, 3, 4], []),
        ([(3, 8)], [1, 9], [(3, 8)]),  # UIDs outside the ranges do not matter
        ([(1, 2**32 - 1)], [2**32 - 1], [(1, 2**32 - 2)]),
    ],
)
def test_missing_uids(ranges, uids, gone) -> None:
    """The UIDs a client may know that are no longer in the folder, for a resynchronisation from before the
    expunge log's horizon (RFC 7162 3.2.6), as ranges rather than one number each."""
    assert sequence.missing(ranges, uids) == gone


def test_set_text() -> None:
    # RFC 7162 3.2.10 example: * VANISHED 405,407,410,425
    assert sequence.text([(405, 405), (407, 407), (410, 410), (425, 425)]) == "405,407,410,425"
    assert sequence.text([(1, 3), (7, 7), (9, 10)]) == "1:3,7,9:10"
    assert sequence.text([]) == ""
