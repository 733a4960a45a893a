"""A trigram index of what IMAP SEARCH TEXT and BODY read, filled after delivery.

`MessageText`: one row per message, the text TEXT reads (the decoded text and header columns, and the stored
header bytes as IMAP search sees them). `MessageTextMark`: per folder, the UID up to which every message has its
row. Both are written by `mailboxes.actions.text_index` in batches after delivery, never by delivery itself (no
cost per message delivered). On PostgreSQL the pg_trgm GIN index on the upper-cased text is created here, and the
rows go with their message or folder (ON DELETE CASCADE, so deleting messages costs no query more in Django);
SQLite keeps its substring scan and leaves the tables empty.
"""

import django.db.models.deletion
from django.db import migrations, models

CREATE = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
ALTER TABLE mailboxes_messagetext ADD CONSTRAINT messagetext_message
    FOREIGN KEY (message_id) REFERENCES mailboxes_message (id) ON DELETE CASCADE;
ALTER TABLE mailboxes_messagetextmark ADD CONSTRAINT messagetextmark_mailbox
    FOREIGN KEY (mailbox_id) REFERENCES mailboxes_mailbox (id) ON DELETE CASCADE;
CREATE INDEX message_text_trigrams ON mailboxes_messagetext USING gin (upper(text) gin_trgm_ops);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0014_message_unseen_uid")]

    operations = [
        migrations.CreateModel(
            name="MessageText",
            fields=[
                (
                    "message",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="mailboxes.message",
                    ),
                ),
                ("text", models.TextField()),
            ],
        ),
        migrations.CreateModel(
            name="MessageTextMark",
            fields=[
                (
                    "mailbox",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="mailboxes.mailbox",
                    ),
                ),
                ("uid", models.BigIntegerField()),
            ],
        ),
        # The constraints and the index go with the tables when migrating back.
        migrations.RunPython(create, migrations.RunPython.noop),
    ]
