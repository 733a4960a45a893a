"""How PostgreSQL compresses the store's large values (TOAST): lz4 where the server has it, for the columns whose
size follows a message's (migrations 0021 and 0027). lz4 compresses several times faster than PostgreSQL's default
pglz, inside the transaction that stores the value; values stored before keep their method until rewritten, and
PostgreSQL reads both. A server built without lz4 keeps pglz; SQLite does not compress.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState


def _lz4_available(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    return bool(row and row[0])


class CompressWithLz4(Operation):
    """A migration's step: `columns` ((table, column) pairs) compressed with lz4 from now on, on a PostgreSQL that
    has it; reversed, with the server's default method again. The models do not change."""

    reduces_to_sql = False  # whether lz4 is there is asked of the server as the migration runs

    def __init__(self, columns: Sequence[tuple[str, str]]) -> None:
        self.columns = [tuple(column) for column in columns]

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        if schema_editor.connection.vendor == "postgresql" and _lz4_available(schema_editor):
            self._set(schema_editor, "lz4")

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            self._set(schema_editor, "DEFAULT")

    def _set(self, schema_editor: BaseDatabaseSchemaEditor, method: str) -> None:
        for table, column in self.columns:
            schema_editor.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET COMPRESSION {method}')

    def describe(self) -> str:
        return "Compress " + ", ".join(f"{table}.{column}" for table, column in self.columns) + " with lz4"
