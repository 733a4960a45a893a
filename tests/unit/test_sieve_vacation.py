"""Vacation replies (RFC 5230): whom never to answer, and the reply's header fields."""

from __future__ import annotations

import datetime

import pytest

from mailcore.mime import parse_message
from sieve.actions import Vacation
from sieve.message import MessageView
from sieve.vacation import build_reply, handle_key, refusal

ORIGINAL = (
    b"From: Bob <bob@remote.example>\r\nTo: Alice <alice@example.com>\r\nSubject: Lunch?\r\n"
    b"Message-ID: <m1@remote.example>\r\nReferences: <m0@remote.example>\r\n\r\nTomorrow?\r\n"
)
OWN = ["alice@example.com"]
NOW = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.UTC)


def view(raw: bytes = ORIGINAL) -> MessageView:
    return MessageView(raw, parse_message(raw))


def test_an_ordinary_message_is_answered():
    assert refusal("bob@remote.example", view(), OWN) is None


@pytest.mark.parametrize(
    ("sender", "extra", "reason"),
    [
        ("", b"", "null address"),
        ("ALICE@example.com", b"", "the sender is the recipient"),
        ("owner-list@remote.example", b"", "list or system address"),
        ("list-request@remote.example", b"", "list or system address"),
        ("mailer-daemon@remote.example", b"", "list or system address"),
        ("LISTSERV@remote.example", b"", "list or system address"),
        ("majordomo@remote.example", b"", "list or system address"),
        ("bob@remote.example", b"Auto-Submitted: auto-generated\r\n", "Auto-Submitted"),
        ("bob@remote.example", b"Auto-Submitted: auto-replied; owner-email=x@y\r\n", "Auto-Submitted"),
        ("bob@remote.example", b"List-Unsubscribe: <mailto:u@remote.example>\r\n", "mailing list"),
        ("bob@remote.example", b"Precedence: junk\r\n", "bulk mail"),
    ],
)
def test_never_answered(sender: str, extra: bytes, reason: str):
    assert reason in (refusal(sender, view(extra + ORIGINAL), OWN) or "")


def test_auto_submitted_no_is_a_person():
    assert refusal("bob@remote.example", view(b"Auto-Submitted: no\r\n" + ORIGINAL), OWN) is None


def test_only_when_the_recipient_is_named():
    hidden = ORIGINAL.replace(b"To: Alice <alice@example.com>", b"To: team@remote.example")
    assert "does not name" in (refusal("bob@remote.example", view(hidden), OWN) or "")
    assert refusal("bob@remote.example", view(hidden), [*OWN, "team@remote.example"]) is None
    resent = b"Resent-To: alice@example.com\r\n" + hidden
    assert refusal("bob@remote.example", view(resent), OWN) is None


def test_reply_fields():
    reply = build_reply(
        Vacation("Back on Monday.", 7),
        view(),
        recipient="alice@example.com",
        to="bob@remote.example",
        now=NOW,
        hostname="mx.example.com",
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
    assert fields[b"From"] == b"alice@example.com"
    assert fields[b"To"] == b"bob@remote.example"
    assert fields[b"Subject"] == b"Auto: Lunch?"
    assert fields[b"In-Reply-To"] == b"<m1@remote.example>"
    assert fields[b"References"] == b"<m0@remote.example> <m1@remote.example>"
    assert fields[b"Auto-Submitted"] == b"auto-replied (vacation)"
    assert fields[b"Message-ID"].endswith(b"@mx.example.com>")
    assert body == b"Back on Monday.\r\n"


def test_reply_with_subject_from_and_unicode():
    reply = build_reply(
        Vacation("Zurück am Montag.", 7, subject="Abwesend", from_="Alice <a@example.com>"),
        view(),
        recipient="alice@example.com",
        to="bob@remote.example",
        now=NOW,
        hostname="mx.example.com",
    )
    parsed = parse_message(reply)
    assert parsed.subject == "Abwesend"
    assert parsed.from_[0].address == "a@example.com"
    assert "Zurück am Montag." in parsed.text


def test_mime_reason_is_a_mime_entity():
    reason = "Content-Type: text/html; charset=utf-8\r\n\r\n<p>Away</p>\r\n"
    reply = build_reply(
        Vacation(reason, 7, mime=True),
        view(),
        recipient="alice@example.com",
        to="bob@remote.example",
        now=NOW,
        hostname="mx.example.com",
    )
    assert parse_message(reply).root.content_type == "text/html"
    assert reply.endswith(b"<p>Away</p>\r\n")


def test_handle_identifies_the_reply():
    assert handle_key(Vacation("a", 7)) != handle_key(Vacation("b", 7))
    assert handle_key(Vacation("a", 7, handle="h")) == handle_key(Vacation("b", 7, handle="h"))


def test_line_breaks_in_subject_and_from_cannot_add_fields():
    reply = build_reply(
        Vacation("x", 7, subject="Away\r\nBcc: eve@example.net", from_="alice@example.com\r\nX-Evil: 1"),
        view(),
        recipient="alice@example.com",
        to="bob@remote.example",
        now=NOW,
        hostname="mx.example.com",
    )
    head = reply.partition(b"\r\n\r\n")[0]
    assert b"\r\nBcc:" not in head
    assert b"\r\nX-Evil:" not in head
