"""Webmail server time on a 100,000-message Inbox: list and conversation pages, opening a message, searches.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailsite_bench .venv/bin/python bench/webmail.py [--messages N]

Seeds the account bench@bench.test once (the rows are generated inside the database from one delivered
message, so seeding takes seconds), then times each request through Django's full stack in-process (URL
routing, session, view, queries, template) and prints the median and the best of several runs in milliseconds.
Target: every figure under 100 ms on PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from mailboxes import actions, search_document  # noqa: E402
from mailboxes.actions import text_index  # noqa: E402
from mailboxes.models import Account, Domain, Mailbox, Message, Role  # noqa: E402

ADDRESS = "bench@bench.test"
RUNS = 15


def seed(total: int) -> Account:
    if not Domain.objects.filter(name="bench.test").exists():
        actions.create_domain("bench.test")
    account = Account.objects.filter(address=ADDRESS).first() or actions.create_account(ADDRESS, "bench")
    inbox = Mailbox.objects.get(account=account, role=Role.INBOX)
    have = Message.objects.filter(mailbox=inbox).count()
    if have >= total:
        return account
    raw = (
        f"From: Sender <sender@remote.test>\r\nTo: {ADDRESS}\r\nSubject: Template\r\n"
        "Message-ID: <template@remote.test>\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\n\r\n"
        + "A line of ordinary message text.\r\n"
        * 40
    ).encode()
    template = Message.objects.get(pk=actions.deliver(raw, "sender@remote.test", [ADDRESS]).message_ids[0])
    table = Message._meta.db_table
    start = have + 1
    with connection.cursor() as cursor:
        # Every column from the template row except the varying ones, generated in one INSERT ... SELECT.
        cursor.execute(
            f"""
            INSERT INTO {table} (account_id, mailbox_id, uid, body_id, modseq, seen, answered, flagged, deleted, draft,
                keywords, internal_date, size, crlf_size, subject, from_name, from_address, to_addresses, cc_addresses,
                bcc_addresses, sent_date, message_id, in_reply_to, "references", thread_id, has_attachments,
                attachment_names, snippet,
                search_text, search_words, envelope, structure, imap_envelope, imap_bodystructure, imap_body)
            SELECT t.account_id, t.mailbox_id, 1000 + n, t.body_id, t.modseq, n %% 7 <> 0, false, n %% 50 = 0,
                false, false, '', now() - make_interval(mins => n), t.size, t.crlf_size,
                'Report ' || n || ' on project topic' || (n %% 1000), 'Sender ' || (n %% 500),
                'sender' || (n %% 500) || '@remote' || (n %% 20) || '.test', t.to_addresses, '', '', t.sent_date,
                '<bench-' || n || '@remote.test>', '', '', md5(n::text)::uuid, n %% 10 = 0,
                CASE WHEN n %% 10 = 0 THEN 'scan' || n || '.jpg image/jpeg' ELSE '' END,
                'Numbers for week ' || (n %% 52) || ' and topic' || (n %% 1000),
                'Message number ' || n || ' about topic' || (n %% 1000) || '. ' || repeat('ordinary words ', 30)
                    || CASE n %% 100 WHEN 0 THEN ' Réunion au Café numéro ' || n
                    WHEN 50 THEN ' 明日の会議は東京都の本社で行います。' ELSE '' END,
                '', t.envelope, t.structure, t.imap_envelope, t.imap_bodystructure, t.imap_body
            FROM generate_series(%s, %s) AS n, {table} AS t WHERE t.id = %s
            """,
            [start, total - 1, template.pk],
        )
        cursor.execute(f"UPDATE {Mailbox._meta.db_table} SET uidnext = %s WHERE id = %s", [1000 + total + 1, inbox.pk])
    # The rows with accents and CJK get their folded search document as a delivery would write it.
    folded = Message.objects.filter(mailbox=inbox, search_words="", search_text__regex="[^[:ascii:]]")
    fields = ("subject", "from_name", "from_address", "to_addresses", "cc_addresses", "search_text")
    Message.objects.bulk_update(
        [Message(id=row[0], search_words=search_document.words(*row[1:])) for row in folded.values_list("id", *fields)],
        ["search_words"],
        batch_size=500,
    )
    # What the indexing task (Celery beat) does within seconds of a delivery: the rows' search documents.
    while text_index.index_search_documents(batch=10_000):
        pass
    with connection.cursor() as cursor:
        # What autovacuum does soon after a bulk load: statistics and the visibility map (index-only scans).
        cursor.execute(f"VACUUM ANALYZE {table}")
    return account


def days_back(days: int) -> str:
    return (datetime.date.today() - datetime.timedelta(days=days)).isoformat()


def measure(client: Client, url: str, params: dict | None = None) -> tuple[float, float]:
    timings = []
    for _ in range(RUNS):
        began = time.perf_counter()
        response = client.get(url, params or {}, secure=True)  # as production is reached (plain HTTP redirects)
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings), min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    account = seed(args.messages)
    inbox = Mailbox.objects.get(account=account, role=Role.INBOX)
    count = Message.objects.filter(mailbox=inbox).count()
    ready = time.perf_counter() - began
    print(f"database: {connection.vendor}; Inbox of {ADDRESS}: {count} messages (ready in {ready:.1f} s)")
    client = Client(HTTP_HOST="localhost")
    client.force_login(account)
    folder_url = reverse("webmail:folder", args=[inbox.pk])
    middle = Message.objects.filter(mailbox=inbox).order_by("-internal_date").values_list("pk", flat=True)[count // 2]
    deep = count // 50 // 2
    cases = [
        ("list, first page", folder_url, None),
        (f"list, page {deep} (offset {(deep - 1) * 50})", folder_url, {"page": deep}),
        ("list, last page", folder_url, {"page": 10**9}),
        ("conversations, first page", folder_url, {"view": "threads"}),
        (f"conversations, page {deep}", folder_url, {"view": "threads", "page": deep}),
        ("open a message", reverse("webmail:message", args=[middle]), None),
        ("search in Inbox: 'topic7' (100 hits)", folder_url, {"q": "topic7"}),
        ("search everywhere: 'sender42' (200 hits)", reverse("webmail:search"), {"q": "sender42"}),
        ("search: 'ordinary' (every message)", folder_url, {"q": "ordinary"}),
        ("search everywhere: 'ordinary' (every message)", reverse("webmail:search"), {"q": "ordinary"}),
        # Accent-insensitive and CJK full text (mailcore/search_words.py): 1% of messages say "Café", 1% "東京都".
        ("search: 'cafe' finds 'Café' (1,000 hits)", folder_url, {"q": "cafe"}),
        ("search everywhere: 'CAFÉ' (1,000 hits)", reverse("webmail:search"), {"q": "CAFÉ"}),
        ("search: '東京' inside a sentence (1,000 hits)", folder_url, {"q": "東京"}),
        ("search everywhere: '会議' (1,000 hits)", reverse("webmail:search"), {"q": "会議"}),
        # Search operators (webmail/search_terms.py): filters on the list columns, alone and with full text.
        ("from:sender42 (200 hits)", reverse("webmail:search"), {"q": "from:sender42"}),
        ("from:sender42 ordinary (200 hits)", reverse("webmail:search"), {"q": "from:sender42 ordinary"}),
        ("to:bench@bench.test (every message)", reverse("webmail:search"), {"q": "to:bench@bench.test"}),
        ("subject:topic7 (topic7, topic70...: 11%)", reverse("webmail:search"), {"q": "subject:topic7"}),
        ("has:attachment (10%)", reverse("webmail:search"), {"q": "has:attachment"}),
        ("filename:report (10% read, no hit)", reverse("webmail:search"), {"q": "filename:report"}),
        ("filename:scan42 (111 hits in the 10%)", reverse("webmail:search"), {"q": "filename:scan42"}),
        ("is:unread (1 in 7)", reverse("webmail:search"), {"q": "is:unread"}),
        ("is:starred (2%)", reverse("webmail:search"), {"q": "is:starred"}),
        ("in:inbox is:starred topic7", reverse("webmail:search"), {"q": "in:inbox is:starred topic7"}),
        ("before: a date 60 days back", reverse("webmail:search"), {"q": f"before:{days_back(60)}"}),
        ("after: yesterday", reverse("webmail:search"), {"q": f"after:{days_back(1)}"}),
    ]
    print(f"{'request':<48} {'median ms':>10} {'best ms':>9}")
    for label, url, params in cases:
        median, best = measure(client, url, params)
        print(f"{label:<48} {median:>10.1f} {best:>9.1f}")


if __name__ == "__main__":
    main()
