"""RFC 3464 delivery status notifications, built from plain values and read back with the stdlib parser."""

from __future__ import annotations

import datetime
from email import message_from_bytes
from email import policy as email_policy

import pytest

from mailcore.dsn import RecipientReport, build_dsn, header_section

NOW = datetime.datetime(2025, 6, 2, 12, 0, tzinfo=datetime.UTC)
ORIGINAL = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: Plans\r\n\r\nsecret body\r\n"


def build(*reports: RecipientReport, until: datetime.datetime | None = None) -> bytes:
    return build_dsn(
        reporting_mta="mx.example.com",
        to="a@example.com",
        original=ORIGINAL,
        recipients=list(reports),
        arrival=NOW - datetime.timedelta(hours=1),
        now=NOW,
        will_retry_until=until,
    )


def test_failed_dsn_is_a_multipart_report_with_the_original_headers_only():
    raw = build(
        RecipientReport("b@example.net", "failed", "5.1.1", "550 5.1.1 no such\nuser", remote_mta="mx.example.net")
    )
    message = message_from_bytes(raw, policy=email_policy.default)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["To"].addresses[0].addr_spec == "a@example.com"
    assert message["Subject"] == "Undelivered Mail Returned to Sender"
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    human, status, headers = message.get_payload()
    assert "b@example.net" in human.get_content()
    text = status.as_bytes().decode()
    assert "Reporting-MTA: dns; mx.example.com" in text
    assert "Final-Recipient: rfc822; b@example.net" in text
    assert "Action: failed" in text
    assert "Status: 5.1.1" in text
    assert "Remote-MTA: dns; mx.example.net" in text
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such user" in text  # multi-line reply folded to one line
    assert "Will-Retry-Until" not in text
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"Subject: Plans" in headers.as_bytes()
    assert b"secret body" not in raw


def test_delayed_dsn_says_until_when_it_is_retried():
    until = NOW + datetime.timedelta(days=4)
    raw = build(
        RecipientReport("b@example.net", "delayed", "4.4.1", "connection refused", smtp_reply=False), until=until
    )
    text = raw.decode()
    assert "Subject: Delayed Mail (still being retried)" in text
    assert "Action: delayed" in text
    assert "Diagnostic-Code: X-Mailsite; connection refused" in text
    assert "Will-Retry-Until: Fri, 06 Jun 2025 12:00:00 +0000" in text


def test_utf8_headers_travel_as_global_headers():
    raw = build_dsn(
        reporting_mta="mx.example.com",
        to="a@example.com",
        original="Subject: Grüße\n\nbody".encode(),
        recipients=[RecipientReport("b@example.net", "failed", "5.0.0", "550 no")],
        arrival=NOW,
        now=NOW,
    )
    assert b"Content-Type: message/global-headers\r\n\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n" in raw


def test_header_section():
    assert header_section(b"A: 1\r\nB: 2\r\n\r\nbody") == b"A: 1\r\nB: 2"
    assert header_section(b"A: 1\n\nbody") == b"A: 1"
    assert header_section(b"A: 1\r\n") == b"A: 1\r\n"


def test_envid_orcpt_and_ret_full_in_a_failure():
    raw = build_dsn(
        reporting_mta="mx.example.com",
        to="a@example.com",
        original=ORIGINAL,
        recipients=[
            RecipientReport("b@example.net", "failed", "5.1.1", "550 no", original_recipient="rfc822;B@example.net")
        ],
        arrival=NOW,
        now=NOW,
        ret="FULL",
        envid="QQ314159",
    )
    message = message_from_bytes(raw, policy=email_policy.default)
    _, status, returned = message.get_payload()
    text = status.as_bytes().decode()
    # RFC 3464 2.2.1 and 2.3.1
    assert "Original-Envelope-Id: QQ314159" in text
    assert "Original-Recipient: rfc822;B@example.net" in text
    assert text.index("Original-Recipient") < text.index("Final-Recipient")
    assert returned.get_content_type() == "message/rfc822"  # RET=FULL (RFC 3461 4.3): the whole message
    assert b"secret body" in raw


@pytest.mark.parametrize("ret", ["", "HDRS"])
def test_headers_only_unless_ret_full(ret):
    raw = build_dsn(
        reporting_mta="mx.example.com",
        to="a@example.com",
        original=ORIGINAL,
        recipients=[RecipientReport("b@example.net", "failed", "5.1.1", "550 no")],
        arrival=NOW,
        now=NOW,
        ret=ret,
    )
    assert b"secret body" not in raw
    assert b"Original-Envelope-Id" not in raw


def test_success_notice_returns_headers_even_with_ret_full():
    raw = build_dsn(
        reporting_mta="mx.example.com",
        to="a@example.com",
        original=ORIGINAL,
        recipients=[RecipientReport("b@example.net", "relayed", "2.0.0", "250 2.0.0 ok", remote_mta="mx.example.net")],
        arrival=NOW,
        now=NOW,
        ret="FULL",
    )
    message = message_from_bytes(raw, policy=email_policy.default)
    assert message["Subject"] == "Successful Mail Delivery Report"
    _, status, returned = message.get_payload()
    assert "Action: relayed" in status.as_bytes().decode()
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"secret body" not in raw
