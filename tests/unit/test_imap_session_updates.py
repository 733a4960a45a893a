"""What a session says about expunges it must hold back (RFC 3501 7.4.1), without sockets or a database."""

from __future__ import annotations

import asyncio
from array import array

from imapd.session import Selected, Session


class _Writer:
    def get_extra_info(self, name: str) -> None:
        return None


def session_with_pending(condstore: bool, qresync: bool = False) -> Session:
    session = Session(None, _Writer(), tls=False, handlers={})  # type: ignore[arg-type]
    session.selected = Selected(1, "INBOX", False, 7, 20, array("I", [1, 2, 3]))
    session.selected.pending_gone = {2: 15, 3: 12}
    session.condstore = condstore
    session.qresync = qresync
    return session


def output(session: Session) -> bytes:
    data = b"".join(session._out)
    session._out.clear()
    return data


def test_held_back_expunges_lower_the_highestmodseq_under_condstore() -> None:
    session = session_with_pending(condstore=True)
    asyncio.run(session.report_changes("FETCH"))
    # RFC 7162 errata 1810: one below the first pending expunge's mod-sequence, and no EXPUNGE yet.
    assert output(session) == b"* OK [HIGHESTMODSEQ 11] Expunges pending\r\n"
    asyncio.run(session.report_changes("UID FETCH"))
    assert output(session) == b"* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n"
    assert session.selected is not None
    assert list(session.selected.uids) == [1]
    assert session.selected.pending_gone == {}


def test_held_back_expunges_without_condstore_and_with_qresync() -> None:
    session = session_with_pending(condstore=False)
    asyncio.run(session.report_changes("STORE"))
    assert output(session) == b""
    session = session_with_pending(condstore=True, qresync=True)
    asyncio.run(session.report_changes("UID STORE"))
    assert output(session) == b"* VANISHED 2:3\r\n"
