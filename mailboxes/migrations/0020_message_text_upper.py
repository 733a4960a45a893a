"""The text of the trigram index of IMAP SEARCH TEXT and BODY is stored upper-cased, and the GIN index is on the
column itself: a search compares the stored text with LIKE instead of calling upper() on every row it reads
(about 5 microseconds a row, most of the time of a string found in many messages). The rows written so far are
dropped with the folders' marks (upper-casing them in place would leave the table twice its size, and a search
reading twice the pages), and the next run of `mailboxes.index_text` writes them again; until then those folders
are scanned as before. upper() of upper-cased text is the same text, so going back only rebuilds the old index.
"""

from django.db import migrations

FORWARD = """
TRUNCATE mailboxes_messagetext, mailboxes_messagetextmark;
DROP INDEX message_text_trigrams;
CREATE INDEX message_text_trigrams ON mailboxes_messagetext USING gin (account_id, text gin_trgm_ops);
"""
BACKWARD = """
DROP INDEX message_text_trigrams;
CREATE INDEX message_text_trigrams ON mailboxes_messagetext USING gin (account_id, upper(text) gin_trgm_ops);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0019_subscriptions")]

    operations = [migrations.RunPython(forward, backward)]
