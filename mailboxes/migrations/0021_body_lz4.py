"""Message bodies are compressed with lz4 rather than PostgreSQL's default pglz, which is several times slower at
compressing, inside every delivery's transaction. Storing a 100 KiB body, measured here: plain text 1.2-1.7 ms
with pglz, 0.3-0.6 ms with lz4; hexadecimal text 2.8-3.7 ms and 0.6-1.3 ms (mail text compresses a little less
with lz4: the price is some disk). Bodies stored before keep pglz until rewritten; PostgreSQL reads both. A server
built without lz4 keeps pglz; SQLite does not compress.
"""

from django.db import migrations


def _lz4_available(schema_editor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    return bool(row and row[0])


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql" and _lz4_available(schema_editor):
        schema_editor.execute("ALTER TABLE mailboxes_messagebody ALTER COLUMN raw SET COMPRESSION lz4")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE mailboxes_messagebody ALTER COLUMN raw SET COMPRESSION DEFAULT")


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0020_message_text_upper")]

    operations = [migrations.RunPython(forward, backward)]
