"""The delivery path's INSERTs (of one row, and of many) store exactly what Django's own save stores."""

from __future__ import annotations

import pytest

from mailboxes import actions
from mailboxes.models import Message, MessageBody, Role

MESSAGES = [
    b"From: Zo\xc3\xab <zoe@remote.test>\r\nTo: a@example.com, b@example.com\r\nCc: c@example.com\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <one@remote.test>\r\n"
    b"In-Reply-To: <zero@remote.test>\r\nReferences: <minus@remote.test> <zero@remote.test>\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
    b"caf\xc3\xa9\r\n--b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0=\r\n--b--\r\n",
    b"Subject: no date, no sender, no id\r\n\r\nbare\r\n",
    b"\r\n",
]
# Columns that differ between two copies of one message by design.
PER_COPY = {"id", "mailbox", "uid", "modseq", "thread_id", "body", "internal_date"}


@pytest.mark.parametrize("together", [True, False], ids=["one group", "one at a time"])
def test_delivered_rows_equal_appended_rows(make_account, together):
    alice = make_account("alice@example.com")
    archive = actions.create_mailbox(alice, "Copies")
    deliveries = [(raw, "s@remote.test", [alice.address]) for raw in MESSAGES]
    if together:
        report = actions.deliver_many(deliveries)
    else:
        report = [result for delivery in deliveries for result in actions.deliver_many([delivery])]
    inbox = alice.mailboxes.get(role=Role.INBOX)
    delivered = list(Message.objects.filter(mailbox=inbox).order_by("uid").select_related("body"))
    assert [m.pk for m in delivered] == [r.message_ids[0] for r in report]
    for message in delivered:
        appended = actions.append(alice, archive.pk, bytes(message.body.raw))
        appended.refresh_from_db()
        for field in Message._meta.concrete_fields:
            if field.name not in PER_COPY:
                assert getattr(message, field.attname) == getattr(appended, field.attname), field.name
    # Each message points at its own body: the keys came back in the order the rows went in.
    assert [bytes(m.body.raw).endswith(raw) for m, raw in zip(delivered, MESSAGES, strict=True)] == [True] * 3


@pytest.mark.parametrize("recipients", [1, 2])
def test_each_copy_points_at_its_message_s_body(make_account, recipients):
    """A group's bodies and copies go in one statement, each copy naming its body by its place in the group:
    every copy of a message has that message's body, and a body is stored once however many copies share it."""
    accounts = [make_account(f"user{n}@example.com") for n in range(recipients)]
    actions.deliver_many([(raw, "s@remote.test", [a.address for a in accounts]) for raw in MESSAGES])
    copies = list(Message.objects.select_related("body").order_by("account_id", "uid"))
    assert len(copies) == len(MESSAGES) * recipients
    for account_copies in (copies[n : n + len(MESSAGES)] for n in range(0, len(copies), len(MESSAGES))):
        assert [bytes(m.body.raw) for m in account_copies] == [
            b"Return-Path: <s@remote.test>\r\n" + r for r in MESSAGES
        ]
    assert len({m.body_id for m in copies}) == MessageBody.objects.count() == len(MESSAGES)
