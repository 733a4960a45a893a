"""IMAP4rev2 (RFC 9051) refusals decided before the store is asked, byte by byte: raw command bytes through the
protocol core and the real handler table, the replies as the session writes them."""

from __future__ import annotations

import asyncio

import pytest

from imapd.commands import TABLE
from imapd.protocol import Command, State
from imapd.session import Session


class _Writer:
    def get_extra_info(self, name: str) -> None:
        return None


def reply(line: bytes, *, rev2: bool) -> bytes:
    session = Session(None, _Writer(), tls=False, handlers=TABLE)  # type: ignore[arg-type]
    session.conn.state = State.AUTHENTICATED
    session.rev2 = rev2
    session.conn.receive_data(line)
    command = session.conn.next_event()
    assert isinstance(command, Command)
    asyncio.run(session.dispatch(command))
    return b"".join(session._out)


@pytest.mark.parametrize(
    "line",
    [
        b"a STATUS INBOX (RECENT)\r\n",
        b"a STATUS INBOX (MESSAGES recent UNSEEN)\r\n",
        b'a LIST "" "*" RETURN (STATUS (MESSAGES RECENT))\r\n',
    ],
)
def test_recent_is_no_status_item_in_rev2(line: bytes) -> None:
    # RFC 9051 6.3.11: status-att has no RECENT (Appendix E: \Recent and RECENT are gone).
    assert reply(line, rev2=True) == b"a BAD IMAP4rev2 has no RECENT\r\n"
