"""How PostgreSQL compresses the store's large values (TOAST): lz4 where the server has it, for the columns whose
size follows a message's (migrations 0021 and 0027). lz4 compresses several times faster than PostgreSQL's default
pglz, inside the transaction that stores the value; values stored before keep their method until rewritten, and
PostgreSQL reads both. A server built without lz4 keeps pglz; SQLite does not compress.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def lz4_available(schema_editor: Any) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    return bool(row and row[0])


def compress_with_lz4(schema_editor: Any, columns: Sequence[tuple[str, str]]) -> None:
    """`columns` ((table, column) pairs) compressed with lz4 from now on, on a PostgreSQL that has it."""
    if schema_editor.connection.vendor == "postgresql" and lz4_available(schema_editor):
        for table, column in columns:
            schema_editor.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET COMPRESSION lz4')


def compress_by_default(schema_editor: Any, columns: Sequence[tuple[str, str]]) -> None:
    """Undoes `compress_with_lz4`: the server's default method again (pglz unless configured otherwise)."""
    if schema_editor.connection.vendor == "postgresql":
        for table, column in columns:
            schema_editor.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET COMPRESSION DEFAULT')
