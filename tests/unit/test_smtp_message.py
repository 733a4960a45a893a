"""smtpd.message: header-block edits on raw bytes."""

import datetime

import pytest

from smtpd import message

RAW = (
    b"Received: from a\r\n\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"From: Alice <alice@example.com>\r\n"
    b"Bcc: secret@example.com,\r\n other@example.com\r\n"
    b"Subject: hi\r\n"
    b"\r\n"
    b"Bcc: this is body text\r\nReceived: so is this\r\n"
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n"),
        (b"x\r\n.\ny\r\n", b"x\r\n.\r\ny\r\n"),
        (b"x\n.\r\ny\r\n", b"x\r\n.\r\ny\r\n"),
        (b"x\r.\ry\r\n", b"x\r\n.\r\ny\r\n"),
        (b"x\r\r\ny", b"x\r\n\r\ny"),
    ],
)
def test_normalise_line_endings(given, expected):
    assert message.normalise_line_endings(given) == expected


def test_header_fields_are_found_only_in_the_header_block():
    assert message.count_fields(RAW, b"Received") == 1
    assert message.has_field(RAW, b"bcc")
    assert not message.has_field(RAW, b"Message-ID")
    assert message.field_values(RAW, b"From") == [b"Alice <alice@example.com>"]


def test_remove_field_takes_continuation_lines_and_leaves_the_body():
    cleaned = message.remove_field(RAW, b"Bcc")
    assert b"secret@" not in cleaned
    assert b"other@" not in cleaned
    assert cleaned.endswith(b"\r\n\r\nBcc: this is body text\r\nReceived: so is this\r\n")
    assert b"Subject: hi\r\n" in cleaned


def test_message_without_body_or_headers():
    assert message.header_end(b"\r\nbody") == 0
    assert message.header_end(b"Subject: x\r\n") == len(b"Subject: x\r\n")
    assert message.count_fields(b"\r\nReceived: x\r\n", b"Received") == 0


def test_received_field():
    when = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    field = message.received_field(
        helo="client\r\n.example",
        ip="192.0.2.7",
        hostname="mx.example.com",
        protocol="ESMTPS",
        queue_id="ABC123",
        recipients=["alice@example.com"],
        tls_version="TLSv1.3",
        now=when,
    )
    assert field == (
        b"Received: from client??.example ([192.0.2.7])\r\n"
        b"\tby mx.example.com (Mailsite) with ESMTPS (TLSv1.3) id ABC123\r\n"
        b"\tfor <alice@example.com>; Wed, 01 May 2024 12:00:00 +0000\r\n"
    )
    several = message.received_field(
        helo="c", ip="192.0.2.7", hostname="mx", protocol="SMTP", queue_id="Q", recipients=["a@x", "b@x"], now=when
    )
    assert b"for <" not in several
