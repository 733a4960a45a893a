"""The trigram index of IMAP SEARCH TEXT and BODY (PostgreSQL only; migration 0015).

Each message gets one `MessageText` row after delivery, in batches (`mailboxes.actions.text_index`): the text
its TEXT search reads, joined by newlines and upper-cased (`STORED`; migration 0020). A pg_trgm GIN index on it
finds, for a string with three letters or digits in a row, the messages whose row contains it the way
Django's `icontains` compares on PostgreSQL (`UPPER(column) LIKE UPPER(pattern)`), so the messages of any column
that contains it are among them. That is a superset, which the caller narrows with its exact conditions; for a
string `exact` accepts it is TEXT's answer itself.

Per folder, `MessageTextMark` holds the UID up to which every message has its row. UIDs ascend in
commit order under the folder's row lock (`mailboxes.actions.counters`), so a message above the mark is the only
kind that may lack a row: `candidates` adds the folder's messages above it, which are scanned as before. A
folder without a mark yet (the first batch has not reached it) is scanned whole, as before, and so is a folder
searched for a string found in many messages, where reading them all through the index would be slower, unless
the index's answer is exact (TEXT, `exact`) and the folder holds much of the account: then the index answers
without reading the messages or their header bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
# What a row holds: upper-cased once here, so a search compares it with LIKE and calls upper() on no row it reads.
STORED = f"upper({TEXT})"
_MESSAGES = Message._meta.db_table
_BODIES = MessageBody._meta.db_table
LIMIT = 2000
# pg_trgm takes trigrams from runs of letters and digits; without one the index would return every row.
_TRIGRAM = re.compile(r"[^\W_]{3}")


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Candidates:
    """The messages a TEXT or BODY search must read: these ids (of any of the account's folders), or with `ids`
    None every message the index finds in `account_id` (`matches`), and the folder's UIDs above `mark`."""

    ids: list[int] | None
    mark: int
    account_id: int


def exact(text: str) -> bool:
    """Whether the index's text contains `text` exactly when TEXT would match the message: for ASCII, ILIKE on
    the header bytes (ASCII) is UPPER ... LIKE, as on the columns; a line break could match across two of the
    columns the text joins."""
    return text.isascii() and "\n" not in text


def matches(account_id: int, text: str) -> tuple[str, list[int | str]]:
    """SQL (and its parameters) for the ids of the account's indexed messages whose text contains `text`."""
    sql = f"SELECT t.message_id FROM {TEXTS} t WHERE t.account_id = %s AND t.text LIKE upper(%s)"
    return sql, [account_id, f"%{like_escape(text)}%"]


def candidates(mailbox_id: int, text: str, *, folder_size: int, answers: bool) -> Candidates | None:
    """What the index leaves of the folder for `text`; None where it cannot narrow: on SQLite, for a string
    without three letters or digits in a row, in a folder not indexed yet, or for a string in more than LIMIT
    of the account's messages, which a scan of the folder finds sooner. When the caller takes the index's
    answer as it is (`answers`, for an `exact` string), more than LIMIT messages are read through the index
    (ids None) if the folder holds at least half of the account's messages: the index then reads at most
    twice the folder's rows, each about half what scanning a message costs."""
    if connection.vendor != "postgresql" or not _TRIGRAM.search(text):
        return None
    folder = (
        MessageTextMark.objects.filter(mailbox_id=mailbox_id)
        .values_list("uid", "mailbox__account_id", "mailbox__account__used_messages")
        .first()
    )
    if folder is None:
        return None
    mark, account_id, account_size = folder
    # The header text is ASCII and TEXT compares it with ILIKE, which lowers both sides: a string with a
    # character beyond ASCII whose lower() is ASCII (the Kelvin sign's is "k") can match it where the index's
    # upper() differs, so such a string is not narrowed.
    found, params = matches(account_id, text)
    sql = f"SELECT ARRAY({found} LIMIT %s), %s AND octet_length(lower(%s)) = char_length(lower(%s))"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, LIMIT + 1, not text.isascii(), text, text])
        ids, folds_to_ascii = cursor.fetchone()
    if folds_to_ascii:
        return None
    if len(ids) > LIMIT:
        if answers and 2 * folder_size >= account_size:
            return Candidates(None, mark, account_id)
        return None
    return Candidates(ids, mark, account_id)
