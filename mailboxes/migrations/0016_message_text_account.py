"""The trigram index of IMAP SEARCH TEXT and BODY is searched per account.

A string common in other accounts' mail no longer crowds a search out of the index: `MessageText` gets its
message's account (which never changes) and the GIN index leads with it (btree_gin). The rows written so far
are dropped with the folders' marks; the next batches of `mailboxes.index_text` write them again, and until
then those folders are scanned as before.
"""

import django.db.models.deletion
from django.db import migrations, models

EMPTY = "DELETE FROM mailboxes_messagetextmark; DELETE FROM mailboxes_messagetext;"
INDEX = """
CREATE EXTENSION IF NOT EXISTS btree_gin;
DROP INDEX message_text_trigrams;
CREATE INDEX message_text_trigrams ON mailboxes_messagetext USING gin (account_id, upper(text) gin_trgm_ops);
"""
OLD_INDEX = """
DROP INDEX message_text_trigrams;
CREATE INDEX message_text_trigrams ON mailboxes_messagetext USING gin (upper(text) gin_trgm_ops);
"""


def reindex(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INDEX)


def old_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_INDEX)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0015_message_text_index")]

    operations = [
        migrations.RunSQL(EMPTY, EMPTY),
        migrations.AddField(
            model_name="messagetext",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                default=0,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="mailboxes.account",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(reindex, old_index),
    ]
