"""mboxrd writer and reader, byte by byte: quoting, separators, metadata lines, dates, oversize messages."""

from __future__ import annotations

import datetime
import io

import pytest

from transfer import mbox
from transfer.flags import Item, Skipped

WHEN = datetime.datetime(2024, 1, 5, 9, 3, 7, tzinfo=datetime.UTC)


def written(*items: Item) -> bytes:
    out = io.BytesIO()
    for item in items:
        mbox.write(out, item)
    return out.getvalue()


def read_all(data: bytes, max_size: int = 1 << 20) -> list[Item | Skipped]:
    return list(mbox.read(io.BytesIO(data), max_size=max_size, name="t"))


def test_writer_output_byte_for_byte() -> None:
    raw = b"Subject: a\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nFrom\r\nnot From here\r\n"
    data = written(Item(raw, ["\\Seen", "\\Flagged", "$Label1"], WHEN, "bob@example.org"))
    assert data == (
        b"From bob@example.org Fri Jan  5 09:03:07 2024\n"
        b"Status: RO\r\nX-Status: F\r\nX-Keywords: $Label1\r\n"
        b"Subject: a\r\n\r\n>From the start\r\n>>From quoted\r\n>>>From twice\r\nFrom\r\nnot From here\r\n"
        b"\n"
    )


def test_from_line_falls_back_to_mailer_daemon() -> None:
    assert mbox.from_line("", WHEN) == b"From MAILER-DAEMON Fri Jan  5 09:03:07 2024\n"
    assert mbox.from_line("a b@c", WHEN).startswith(b"From MAILER-DAEMON ")
    later = datetime.datetime(2024, 12, 25, 23, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    assert mbox.from_line("x@y", later) == b"From x@y Thu Dec 26 04:00:00 2024\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: plain\r\n\r\nBody\r\n",
        b"Subject: no final newline\r\n\r\nBody",
        b"Subject: bare LF\n\nline\nFrom inside\n>From\n\n",
        b"Subject: mixed\r\n\r\na\nb\r\nc\r",
        b"",
        b"\r\n",
        b"Status: RO\r\nX-Status: A\r\nX-Keywords: kept\r\nSubject: own metadata headers\r\n\r\nx\r\n",
        b"From nobody Mon Jan  1 00:00:00 2024\r\n\r\nA body line that looks like a separator\r\n",
        b"Subject: x\r\n\r\n\r\n\r\n",
    ],
)
def test_round_trip_is_exact(raw: bytes) -> None:
    item = Item(raw, ["\\Answered", "\\Draft", "\\Deleted", "work", "$Forwarded"], WHEN, "s@example.org")
    other = Item(b"Subject: second\r\n\r\n2\r\n", [], WHEN)
    back = read_all(written(item, other, item))
    assert [(got.raw, got.flags, got.internal_date) for got in back] == [  # type: ignore[union-attr]
        (raw, ["\\Answered", "\\Deleted", "\\Draft", "work", "$Forwarded"], WHEN),
        (other.raw, [], WHEN),
        (raw, ["\\Answered", "\\Deleted", "\\Draft", "work", "$Forwarded"], WHEN),
    ]


def test_foreign_mboxo_body_from_lines_stay_in_their_message() -> None:
    data = (
        b"From alice@example.org Mon Jan  1 10:00:00 2024\n"
        b"Subject: one\n\nFrom here on, we talk.\nFrom: not a header\n\n"
        b"From bob@example.org Tue Jan  2 11:30 +0100 2024\n"
        b"Subject: two\nStatus: R\nX-Status: AF\n\nbody\n"
    )
    first, second = read_all(data)
    assert isinstance(first, Item)
    assert isinstance(second, Item)
    assert first.raw == b"Subject: one\n\nFrom here on, we talk.\nFrom: not a header\n"
    assert first.sender == "alice@example.org"
    assert first.internal_date == datetime.datetime(2024, 1, 1, 10, tzinfo=datetime.UTC)
    # Foreign metadata headers give flags and stay in the message.
    assert second.raw == b"Subject: two\nStatus: R\nX-Status: AF\n\nbody"
    assert second.flags == ["\\Seen", "\\Answered", "\\Flagged"]
    assert second.internal_date == datetime.datetime(2024, 1, 2, 10, 30, tzinfo=datetime.UTC)


def test_thunderbird_status_is_read() -> None:
    (item,) = read_all(b"From - Mon Jan  1 10:00:00 2024\nX-Mozilla-Status: 0005\nSubject: t\n\nx\n\n")
    assert isinstance(item, Item)
    assert item.flags == ["\\Seen", "\\Flagged"]


def test_not_an_mbox_file() -> None:
    with pytest.raises(mbox.MboxError, match="does not begin with a 'From ' line"):
        read_all(b"Subject: a lone message\n\nhello\n")
    assert read_all(b"") == []


def test_oversize_message_is_skipped_and_the_next_one_read() -> None:
    big = Item(b"Subject: big\r\n\r\n" + b"x" * 300_000 + b"\r\n", [], WHEN)  # one line longer than a chunk
    exact = Item(b"y" * 100, [], WHEN)
    data = written(big, exact)
    metadata = len(b"Status: O\nX-Status: \nX-Keywords: \n")
    skipped, small = read_all(data, max_size=100 + metadata)
    assert skipped == Skipped("t at byte 0", f"larger than {100 + metadata} bytes")
    # The metadata lines count while reading, but are not part of the message.
    assert isinstance(small, Item)
    assert small.raw == exact.raw


def test_message_split_across_read_chunks_keeps_quoting_at_line_starts_only() -> None:
    raw = b"Subject: long\r\n\r\n" + b"a" * 70_000 + b"From not at a line start\r\nFrom at one\r\n"
    (item,) = read_all(written(Item(raw, [], WHEN)))
    assert isinstance(item, Item)
    assert item.raw == raw
