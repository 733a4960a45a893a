"""DATA content: end of data, dot-unstuffing and the line limit, however the client's bytes are split up."""

from __future__ import annotations

import time

import pytest

from tests.smtp_support import RawSession, stored

BODY_LINES = b"".join(
    b"line %d ends in a dot.\r\n.dot first %d\r\n" % (n, n) + b"x" * 76 + b"\r\n" for n in range(3000)
)

CASES = {
    # name: (bytes sent after the 354 reply, content expected in the store)
    "dot-stuffed lines": (
        b"Subject: dots\r\n\r\n..leading dot\r\nends in a dot.\r\n...\r\n.\r\n",
        b"Subject: dots\r\n\r\n.leading dot\r\nends in a dot.\r\n..\r\n",
    ),
    "first line stuffed": (b"..\r\n.\r\n", b".\r\n"),
    "empty message": (b".\r\n", b""),
    "one line": (b"Subject: one\r\n.\r\n", b"Subject: one\r\n"),
    "1000-octet line": (
        b"Subject: long\r\n\r\n" + b"y" * 998 + b"\r\n.\r\n",
        b"Subject: long\r\n\r\n" + b"y" * 998 + b"\r\n",
    ),
    "300 KiB, many dots": (
        b"Subject: big\r\n\r\n" + BODY_LINES + b".\r\n",
        b"Subject: big\r\n\r\n" + BODY_LINES.replace(b"\r\n.dot", b"\r\ndot"),
    ),
}


def send_split(session: RawSession, payload: bytes, how: str) -> None:
    if how == "at once":
        session.send(payload)
    elif how == "before the final dot":
        session.send(payload[:-3])
        time.sleep(0.05)
        session.send(payload[-3:])
    else:  # the first 2 KiB in pieces of 7 bytes, so dots, CRs and LFs fall on every side of a packet boundary
        pieces = 2002 // 7
        for start in range(0, 7 * pieces, 7):
            session.send(payload[start : start + 7])
            time.sleep(0.001)
        session.send(payload[7 * pieces :])


def content_of(raw: bytes) -> bytes:
    """The stored message without the Return-Path and Received fields the server put in front."""
    lines = raw.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path:")
    assert lines[1].startswith(b"Received:")
    rest = 2
    while lines[rest].startswith(b"\t"):
        rest += 1
    return b"\r\n".join(lines[rest:])


@pytest.mark.parametrize("how", ["at once", "before the final dot", "in 7-byte pieces"])
@pytest.mark.parametrize("case", CASES)
def test_content_is_stored_exactly(listeners, make_account, raw_smtp, case, how):
    make_account("alice@example.com")
    sent, expected = CASES[case]
    session = raw_smtp(listeners("smtpd")["smtp"].port)
    session.command("EHLO client.test")
    session.command("MAIL FROM:<carol@remote.test>")
    session.command("RCPT TO:<alice@example.com>")
    assert session.command("DATA").startswith("354")
    send_split(session, sent, how)
    assert session.reply().startswith("250 2.0.0")
    assert session.command("NOOP").startswith("250")  # nothing of the content was read as a command
    [raw] = stored("alice@example.com")
    assert content_of(raw) == expected


@pytest.mark.parametrize("line", [999, 5000, 200_000], ids=lambda n: f"{n + 2}-octet line")
def test_a_line_over_1000_octets_is_refused_after_the_whole_message(listeners, make_account, raw_smtp, line):
    make_account("alice@example.com")
    session = raw_smtp(listeners("smtpd")["smtp"].port)
    session.command("EHLO client.test")
    session.command("MAIL FROM:<carol@remote.test>")
    session.command("RCPT TO:<alice@example.com>")
    assert session.command("DATA").startswith("354")
    session.send(b"Subject: long\r\n\r\n" + b"y" * line + b"\r\nMAIL FROM:<x@y.test>\r\n.\r\n")
    assert session.reply().startswith("500 5.5.2")
    assert session.command("NOOP").startswith("250")
    assert stored("alice@example.com") == []
