"""The webmail's search document is written after delivery, in batches, instead of inside it.

`search_document` was a generated column: PostgreSQL ran to_tsvector over up to 64 KiB of a message's text in
every delivery's INSERT (about 12 ms for a 100 KiB message here, more than half of its delivery) and again for
every COPY. It becomes a plain column, left NULL by the writers and filled by `mailboxes.index_text`
(`actions.text_index.index_search_documents`); a search reads the index and computes the document of the
messages not yet indexed on the fly, found through the partial index `message_unindexed` (see
`mailboxes.search_document`). DROP EXPRESSION keeps every stored document and rewrites nothing.
"""

from django.db import migrations

from mailboxes.search_document import SQL

FORWARD = """
ALTER TABLE mailboxes_message ALTER COLUMN search_document DROP EXPRESSION;
CREATE INDEX message_unindexed ON mailboxes_message (account_id) WHERE search_document IS NULL;
"""
BACKWARD = f"""
DROP INDEX message_unindexed;
ALTER TABLE mailboxes_message DROP COLUMN search_document;
ALTER TABLE mailboxes_message ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({SQL}) STORED;
CREATE INDEX message_search ON mailboxes_message USING GIN (search_document);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0021_body_lz4")]

    operations = [migrations.RunPython(forward, backward)]
