"""A stored search document for full-text search, and a per-folder thread index for the conversation list.

PostgreSQL only: `search_document`, a tsvector column generated from the same expression as the GIN index of
0002, replaces that expression index. Searching a word found in most messages used to evaluate to_tsvector on
every matching row; the stored column is computed once, when a row is written. The model does not declare the
column, so Django never writes or reads it except where the webmail names it (`webmail.queries`); SQLite has
neither column nor index and keeps its substring search. Adding the column rewrites the message table once.

On every database, the index (mailbox, thread_id, internal_date, id) answers "is there a newer message of this
thread in this folder?" for the conversation list, and the per-thread counts of one page.
"""

from django.db import migrations, models

SEARCH_DOCUMENT = (
    "to_tsvector('simple'::regconfig, subject || ' ' || from_name || ' ' || from_address || ' ' || "
    "translate(from_address, '@.', '  ') || ' ' || to_addresses || ' ' || translate(to_addresses, '@.<>', '    ') "
    "|| ' ' || cc_addresses || ' ' || translate(cc_addresses, '@.<>', '    ') || ' ' || search_text)"
)


def add_search_document(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS message_search")
        schema_editor.execute(
            f"ALTER TABLE mailboxes_message ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({SEARCH_DOCUMENT}) "
            "STORED"
        )
        schema_editor.execute("CREATE INDEX message_search ON mailboxes_message USING GIN (search_document)")


def drop_search_document(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE mailboxes_message DROP COLUMN search_document")  # drops its index too
        schema_editor.execute(f"CREATE INDEX message_search ON mailboxes_message USING GIN ({SEARCH_DOCUMENT})")


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0005_message_imap_body")]

    operations = [
        migrations.RunPython(add_search_document, drop_search_document),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["mailbox", "thread_id", "internal_date", "id"], name="message_folder_thread"),
        ),
    ]
