"""The trigram index of IMAP SEARCH TEXT and BODY (PostgreSQL only; migration 0015).

Each message gets one `MessageText` row after delivery, in batches (`mailboxes.actions.
text_index`): the text its TEXT search reads, joined by newlines. A pg_trgm GIN index on its upper-cased form
finds, for a string with three letters or digits in a row, the messages whose row contains it the way Django's
`icontains` compares on PostgreSQL (`UPPER(column) LIKE UPPER(pattern)`), so the messages of any column that
contains it are among them. That is a superset: the caller still applies its exact conditions to it.

Per folder, `MessageTextMark` holds the UID up to which every message has its row. UIDs ascend in
commit order under the folder's row lock (`mailboxes.actions.counters`), so a message above the mark is the only
kind that may lack a row: `candidates` adds the folder's messages above it, which are scanned as before. A
folder without a mark yet (the first batch has not reached it) is scanned whole, as before.
"""

from __future__ import annotations

import re

from django.db import connection

from mailboxes.models import Message, MessageBody, MessageText, MessageTextMark

TEXTS = MessageText._meta.db_table
MARKS = MessageTextMark._meta.db_table
# Every column IMAP SEARCH TEXT reads (BODY reads search_text); the stored header bytes follow them.
COLUMNS = (
    "search_text",
    "subject",
    "from_name",
    "from_address",
    "to_addresses",
    "cc_addresses",
    "bcc_addresses",
    "message_id",
    "in_reply_to",
    "references",
)
# The header block of the stored bytes as IMAP search reads it (imapd.search_sql): escape-encoded, so ASCII.
HEADER = "encode(substring(b.raw from 1 for (m.structure->'o'->>2)::int), 'escape')"
TEXT = "concat_ws(E'\\n', " + ", ".join(f'm."{column}"' for column in COLUMNS) + f", {HEADER})"
_MESSAGES = Message._meta.db_table
_BODIES = MessageBody._meta.db_table
# pg_trgm takes trigrams from runs of letters and digits; without one the index would return every row.
_TRIGRAM = re.compile(r"[^\W_]{3}")


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def candidates(mailbox_id: int, text: str) -> tuple[str, list[object]] | None:
    """SQL for the ids of messages that may contain `text` in a TEXT column or the header (those of other folders
    included), with its parameters; None where the index cannot narrow (SQLite, no three letters or digits in a
    row, or a folder not indexed yet)."""
    if connection.vendor != "postgresql" or not _TRIGRAM.search(text):
        return None
    mark = MessageTextMark.objects.filter(mailbox_id=mailbox_id).values_list("uid", flat=True).first()
    if mark is None:
        return None
    # The mark as a constant, so the planner sees how few messages are above it. A mark read before a batch
    # raised it only leaves more to scan.
    sql = (
        f"SELECT t.message_id FROM {TEXTS} t WHERE upper(t.text) LIKE upper(%s) "
        f"UNION ALL SELECT m.id FROM {_MESSAGES} m WHERE m.mailbox_id = %s AND m.uid > %s"
    )
    params: list[object] = [f"%{like_escape(text)}%", mailbox_id, mark]
    if not text.isascii():
        # The header text is ASCII and TEXT compares it with ILIKE, which lowers both sides: a string with a
        # character beyond ASCII whose lower() is ASCII (the Kelvin sign's is "k") can match it where upper()
        # differs. Then the whole folder is a candidate (a condition on constants, decided when planning).
        sql += f" UNION ALL SELECT m.id FROM {_MESSAGES} m WHERE m.mailbox_id = %s"
        sql += " AND octet_length(lower(%s)) = char_length(lower(%s))"
        params += [mailbox_id, text, text]
    return sql, params
