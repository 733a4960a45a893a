"""Statements over a set of UID ranges (mailboxes/uid_ranges.py) read the folder's index range by range: a set of
hundreds of scattered messages reads those messages, not every message of the folder once per range."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from imapd import fetch, sequence, store
from imapd.protocol import Atom
from mailboxes import actions
from mailboxes.actions import flags
from mailboxes.models import Account, Mailbox, Role
from tests.integration.test_store_delivery import RAW

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")

MESSAGES = 1200


@pytest.fixture
def folder(db, make_account) -> tuple[Account, Mailbox]:
    alice = make_account("alice@example.com")
    inbox = Mailbox.objects.get(account=alice, role=Role.INBOX)
    for number in range(MESSAGES):
        actions.append(alice, inbox.pk, RAW.replace(b"<m1@", b"<m%d@" % number))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return alice, inbox


def messages_read(sql: str, params: list) -> int:
    """Rows the statement took from the message table, by its plan as run (EXPLAIN ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        [(plan,)] = cursor.fetchall()

    def read(node: dict) -> int:
        own = 0
        if node.get("Relation Name") == "mailboxes_message":
            loops = node["Actual Loops"]
            own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * loops
        return own + sum(read(child) for child in node.get("Plans", []))

    return read((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])


def test_a_scattered_set_reads_only_its_messages(folder) -> None:
    alice, inbox = folder
    odd = list(range(1, MESSAGES + 1, 2))
    ranges = sequence.runs(odd)
    assert len(ranges) == MESSAGES // 2
    assert messages_read(*flags._read_ranges_statement(alice.pk, inbox.pk, ranges, MESSAGES)) == len(odd)
    request = fetch.parse([[Atom("FLAGS"), Atom("ENVELOPE")]])
    statement = store._fetch_statement(("uid", "size", "modseq", "imap_envelope"), inbox.pk, ranges, MESSAGES, None)
    assert messages_read(*statement) == len(odd)
    fetched = store.fetch(alice, inbox.pk, ranges, MESSAGES, request, False).messages
    assert [message.uid for message in fetched] == odd
