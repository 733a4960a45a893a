"""SEARCH over a real imapd: the RFC 3501 6.4.4 semantics the parser and SQL translation must get right, the
nesting limit, ESEARCH (RFC 4731) and SEARCHRES (RFC 5182)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from tests.imap_support import RawClient, Server, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def append(client: RawClient, raw: bytes, date: str | None = None, flags: str = "()") -> None:
    when = f' "{date}"' if date else ""
    client.ok(b"APPEND INBOX %s%s {%d+}\r\n%s" % (flags.encode(), when.encode(), len(raw), raw))


def mail(*headers: str, body: str = "Hello.\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def found(client: RawClient, criteria: str) -> list[int]:
    data = client.ok(f"UID SEARCH {criteria}")
    (line,) = [line for line in data.split(b"\r\n") if line.startswith(b"* SEARCH")]
    return [int(n) for n in line.split()[2:]]


@pytest.fixture
def client(server: Server) -> RawClient:
    client = RawClient(server)
    # 1: Date late on 1 Jan in New York (2 Jan in UTC); internal date the last second of 1 Jan UTC.
    append(
        client,
        mail("From: a@example.org", "Subject: one", "Date: Mon, 01 Jan 2024 23:30:00 -0500 (EST)", "X-Tag: red"),
        "01-Jan-2024 23:59:59 +0000",
    )
    # 2: Date early on 2 Jan east of UTC (1 Jan in UTC); internal date late on 1 Jan in a zone west of UTC,
    # which is 2 Jan in UTC.
    append(
        client,
        mail("From: b@example.org", "Date: Tue, 02 Jan 2024 00:30:00 +0200", "Message-ID: <two@example.org>"),
        "01-Jan-2024 22:00:00 -0300",
    )
    # 3: no Date: header: its internal date stands in for it.
    third = mail("From: c@example.org", "Subject: ", body="needle in the body\r\n")
    append(client, third, "03-Jan-2024 12:00:00 +0000")
    client.ok("SELECT INBOX")
    return client


def test_sent_dates_use_the_day_in_the_header_zone(client: RawClient) -> None:
    assert found(client, "SENTON 1-Jan-2024") == [1]
    assert found(client, "SENTON 2-Jan-2024") == [2]
    assert found(client, "SENTBEFORE 2-Jan-2024") == [1]
    assert found(client, "SENTSINCE 2-Jan-2024") == [2, 3]
    assert found(client, "SENTON 3-Jan-2024") == [3]
    assert found(client, "NOT SENTON 2-Jan-2024") == [1, 3]


def test_internal_dates_ignore_the_time(client: RawClient) -> None:
    assert found(client, "ON 1-Jan-2024") == [1]
    assert found(client, "ON 2-Jan-2024") == [2]
    assert found(client, "BEFORE 2-Jan-2024") == [1]
    assert found(client, "SINCE 2-Jan-2024") == [2, 3]
    assert found(client, "SINCE 4-Jan-2024") == []


def test_text_matches_header_fields(client: RawClient) -> None:
    assert found(client, "TEXT needle") == [3]
    assert found(client, "TEXT two@example") == [2]
    assert found(client, "TEXT b@EXAMPLE.org") == [2]
    assert found(client, "BODY two@example") == []
    if connection.vendor == "postgresql":
        assert found(client, "TEXT red") == [1]  # a field without a column of its own


def test_an_empty_header_value_matches_every_message_with_the_field(client: RawClient) -> None:
    assert found(client, 'HEADER Subject ""') == [1, 3]
    assert found(client, 'SUBJECT ""') == [1, 3]
    assert found(client, 'HEADER Message-ID ""') == [2]
    assert found(client, 'NOT HEADER Date ""') == [3]
    if connection.vendor == "postgresql":
        assert found(client, 'HEADER X-Tag ""') == [1]


def test_hostile_nesting_is_bad_and_the_session_goes_on(client: RawClient) -> None:
    data = client.command("SEARCH " + "NOT " * 5000 + "ALL")
    assert data.endswith(b" BAD Search keys nested too deeply (the limit is 32)\r\n"), data
    assert found(client, "NOT NOT NOT ALL") == []
    assert found(client, "OR OR 1 2 (3)") == [1, 2, 3]


def test_esearch(client: RawClient) -> None:
    data = client.ok("SEARCH RETURN (MIN MAX COUNT ALL) SINCE 2-Jan-2024")
    assert b'* ESEARCH (TAG "t' in data
    assert b") MIN 2 MAX 3 COUNT 2 ALL 2:3\r\n" in data
    data = client.ok("UID SEARCH RETURN () ALL")
    assert b") UID ALL 1:3\r\n" in data
    data = client.ok("UID SEARCH RETURN (COUNT MIN) SINCE 1-Jan-2030")
    assert b") UID COUNT 0\r\n" in data
    assert b"* SEARCH" not in data


def test_searchres_saves_a_result_for_later_commands(client: RawClient) -> None:
    data = client.ok("UID SEARCH RETURN (SAVE) SENTSINCE 2-Jan-2024")
    # RFC 5182 2.4: SAVE alone answers nothing.
    assert b"ESEARCH" not in data
    assert b"* SEARCH" not in data
    data = client.ok("UID FETCH $ (UID)")
    assert b"* 2 FETCH (UID 2)\r\n* 3 FETCH (UID 3)\r\n" in data
    client.ok("STORE $ +FLAGS.SILENT (\\Flagged)")
    assert found(client, "FLAGGED") == [2, 3]
    assert found(client, "$ SENTON 3-Jan-2024") == [3]
    # A failed SEARCH ... SAVE empties the saved result (RFC 5182 2.1).
    assert b" BAD " in client.command("SEARCH RETURN (SAVE) FROBNICATE")
    assert found(client, "OR $ 1") == [1]
    # MIN with SAVE saves the first message only.
    client.ok("SEARCH RETURN (SAVE MIN) ALL")
    assert found(client, "$") == [1]
