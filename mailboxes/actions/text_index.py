"""Filling the trigram index of IMAP SEARCH TEXT and BODY (`mailboxes.text_index`) and the webmail's search
documents (`mailboxes.search_document`), a batch per action.

Run by Celery beat after delivery (`mailboxes.index_text`) and by `manage.py indextext`, never inside a
delivery: a delivered message costs nothing here until a batch takes it. Folders are visited in id order and
each one's messages in UID order from its mark. The mark only rises to UIDs below the folder's `uidnext` as read
at the start: every message below it was then committed, since UIDs are reserved under the folder's lock in the
delivering transaction. No folder lock is taken (it would hold up deliveries): this writes only the index's own
tables, and a row for a message deleted meanwhile fails that folder's step alone, which the next batch redoes.
"""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction

from mailboxes.actions.locks import action
from mailboxes.models import Mailbox, Message, MessageBody
from mailboxes.search_document import SQL
from mailboxes.text_index import MARKS, STORED, TEXTS

BATCH = 1000
_PENDING = f"""
    SELECT f.id, f.uidnext, COALESCE(k.uid, 0) FROM {Mailbox._meta.db_table} f
    LEFT JOIN {MARKS} k ON k.mailbox_id = f.id WHERE f.uidnext - 1 > COALESCE(k.uid, 0) ORDER BY f.id
"""
_INDEX = f"""
    WITH picked AS (
        SELECT id, uid FROM {Message._meta.db_table} WHERE mailbox_id = %s AND uid > %s AND uid < %s
        ORDER BY uid LIMIT %s
    ), added AS (
        INSERT INTO {TEXTS} (message_id, account_id, text)
        SELECT m.id, m.account_id, {STORED} FROM picked p JOIN {Message._meta.db_table} m ON m.id = p.id
        JOIN {MessageBody._meta.db_table} b ON b.id = m.body_id
        ON CONFLICT (message_id) DO NOTHING
    )
    SELECT count(*), max(uid) FROM picked
"""
_MARK = f"""
    INSERT INTO {MARKS} (mailbox_id, uid) VALUES (%s, %s)
    ON CONFLICT (mailbox_id) DO UPDATE SET uid = GREATEST({MARKS}.uid, EXCLUDED.uid)
"""


@action
def index_text(*, batch: int = BATCH) -> int:
    """Give up to `batch` messages past their folders' marks their index rows and raise the marks; returns how
    many messages were indexed (0 on SQLite, which has no index)."""
    if connection.vendor != "postgresql":
        return 0
    done = 0
    with connection.cursor() as cursor:
        cursor.execute(_PENDING)
        for folder, uidnext, mark in cursor.fetchall():
            if done >= batch:
                break
            try:
                with transaction.atomic():
                    cursor.execute(_INDEX, [folder, mark, uidnext, batch - done])
                    count, highest = cursor.fetchone()
                    # Fewer than asked: the folder is indexed up to where uidnext stood.
                    cursor.execute(_MARK, [folder, highest if done + count >= batch else uidnext - 1])
            except IntegrityError:  # a message or the folder went meanwhile
                continue
            done += count
    return done


DOCUMENT_BATCH = 100
# SKIP LOCKED: a message whose row another transaction holds (a flag change) is left for the next batch, so this
# never waits for a row lock and can never be one end of a deadlock; the row locks it takes itself, outside
# `locks.lock`, last one batch of at most DOCUMENT_BATCH documents.
_DOCUMENTS = f"""
    WITH picked AS (
        SELECT id FROM {Message._meta.db_table} WHERE search_document IS NULL LIMIT %s FOR UPDATE SKIP LOCKED
    )
    UPDATE {Message._meta.db_table} SET search_document = {SQL} FROM picked
    WHERE {Message._meta.db_table}.id = picked.id
"""


@action
def index_search_documents(*, batch: int = DOCUMENT_BATCH) -> int:
    """Write the search document of up to `batch` messages stored without one; returns how many (0 on SQLite,
    which has no search document)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_DOCUMENTS, [batch])
        return cursor.rowcount
