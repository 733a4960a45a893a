"""Reading the maildrop (the account's Inbox) for POP3. Synchronous: called through `asyncdb.call`.

Nothing here writes; deletion at QUIT is `services.delete_messages`.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from mailboxes.models import Mailbox, Message, MessageBody, Role
from pop3d.messages import crlf_size
from pop3d.protocol import Maildrop, ScanEntry

_BODY_TABLE = MessageBody._meta.db_table
# PostgreSQL cannot count bytes in a bytea cheaply, but it can find an LF without a CR before it: `escape`
# keeps CR and LF as they are (it only rewrites NUL, backslash and bytes >= 0x80).
_BARE_LF_BODIES_PG = f"""
    SELECT b.id FROM {Message._meta.db_table} m JOIN {_BODY_TABLE} b ON b.id = m.body_id
    WHERE m.mailbox_id = %s AND encode(b.raw, 'escape') ~ '(^|[^\\r])\\n'
"""


def open_maildrop(account_id: int) -> tuple[int, Maildrop]:
    """The Inbox's id and its scan listing in UID order, with the sizes RETR will send."""
    inbox_id, uidvalidity = (
        Mailbox.objects.filter(account_id=account_id, role=Role.INBOX).values_list("id", "uidvalidity").get()
    )
    rows = list(Message.objects.filter(mailbox_id=inbox_id).order_by("uid").values_list("uid", "size", "body_id"))
    sizes = _sizes_of_bare_lf_bodies(inbox_id) if rows else {}
    entries = tuple(ScanEntry(uid, sizes.get(body_id, size), body_id) for uid, size, body_id in rows)
    return inbox_id, Maildrop(uidvalidity, entries)


def _sizes_of_bare_lf_bodies(inbox_id: int) -> dict[int, int]:
    """CRLF sizes of the bodies whose stored size is not what RETR sends (bare LF line endings).

    SMTP delivery stores CRLF, so this is normally empty; IMAP APPEND stores what the client sent.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_BARE_LF_BODIES_PG, [inbox_id])
            odd = [body_id for (body_id,) in cursor.fetchall()]
        bodies = MessageBody.objects.filter(pk__in=odd)
    else:
        # SQLite (single-machine setups) has no such test: every body is measured.
        bodies = MessageBody.objects.filter(messages__mailbox_id=inbox_id)
    return {body_id: crlf_size(bytes(raw)) for body_id, raw in bodies.values_list("id", "raw")}


def read_bodies(body_ids: Sequence[int]) -> dict[int, bytes]:
    """Stored bytes of these bodies; bodies removed meanwhile are missing from the result."""
    return {pk: bytes(raw) for pk, raw in MessageBody.objects.filter(pk__in=body_ids).values_list("id", "raw")}


def read_head(inbox_id: int, uid: int) -> bytes | None:
    """The header block and the blank line after it (enough for TOP n 0) without loading the whole body."""
    found = Message.objects.filter(mailbox_id=inbox_id, uid=uid).values_list("body_id", "structure__o").first()
    if found is None:
        return None
    # The root part's offsets (mailcore.mime.MimePart.to_json): header_start, header_end, body_start, body_end.
    body_id, (_, _, body_start, _) = found
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT substr(raw, 1, %s) FROM {_BODY_TABLE} WHERE id = %s", [body_start, body_id])
        row = cursor.fetchone()
    return None if row is None else bytes(row[0])
