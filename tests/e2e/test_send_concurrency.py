"""Two users sending to each other at the same moment, from the webmail and over submission, on PostgreSQL:
every action takes its locks in one order, so none deadlocks, none fails, and each message arrives once."""

from __future__ import annotations

import smtplib
import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.test import Client

from mailboxes.models import Message, Role
from tests.conftest import PASSWORD

ROUNDS = 50  # per sender and path: 4 x 50 = 200 sends


@pytest.fixture
def submission_port(listeners, make_account):
    make_account("alice@example.com")
    make_account("bob@example.com")
    return listeners("smtpd")["submission"].port


def _webmail(sender: str, rcpt: str, failures: list[str]) -> None:
    client = Client()
    try:
        assert client.login(username=sender, password=PASSWORD)
        for number in range(ROUNDS):
            data = {"to": rcpt, "subject": f"web {sender} {number}", "body": "hi", "action": "send"}
            response = client.post("/compose/", data)
            if response.status_code != 302:
                failures.append(f"webmail {sender} {number}: {response.status_code}")
    except Exception as exc:  # the assertion is on `failures`, in the test's thread
        failures.append(f"webmail {sender}: {exc!r}")
    finally:
        connections.close_all()


def _smtp(port: int, sender: str, rcpt: str, context, failures: list[str]) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.starttls(context=context)
            client.login(sender, PASSWORD)
            for number in range(ROUNDS):
                raw = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: smtp {sender} {number}\r\n\r\nhi\r\n"
                refused = client.sendmail(sender, [rcpt], raw.encode())
                if refused:
                    failures.append(f"smtp {sender} {number}: {refused}")
    except Exception as exc:
        failures.append(f"smtp {sender}: {exc!r}")


def test_two_users_sending_to_each_other_never_deadlock(submission_port, tls_client_context):
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL (row locks); set DATABASE_URL")
    failures: list[str] = []
    pairs = [("alice@example.com", "bob@example.com"), ("bob@example.com", "alice@example.com")]
    threads = [threading.Thread(target=_webmail, args=(s, r, failures)) for s, r in pairs]
    threads += [
        threading.Thread(target=_smtp, args=(submission_port, s, r, tls_client_context, failures)) for s, r in pairs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    for sender, rcpt in pairs:
        inbox = Counter(
            Message.objects.filter(account__address=rcpt, mailbox__role=Role.INBOX).values_list("subject", flat=True)
        )
        expected = {f"{path} {sender} {n}" for path in ("web", "smtp") for n in range(ROUNDS)}
        assert set(inbox) >= expected
        assert all(inbox[subject] == 1 for subject in expected), "each message delivered once"
        sent = Counter(
            Message.objects.filter(account__address=sender, mailbox__role=Role.SENT).values_list("subject", flat=True)
        )
        assert sent == Counter({f"web {sender} {n}": 1 for n in range(ROUNDS)}), "one Sent copy of each web send"
