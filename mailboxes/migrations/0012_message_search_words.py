"""Accent-insensitive and CJK full-text search, and attachment names for `filename:` searches.

`search_words`: the search document of a message with letters beyond ASCII, folded (mailboxes.search_document,
mailcore.search_words). On PostgreSQL the generated `search_document` column is dropped and added again with the
expression that prefers `search_words`, which REWRITES THE MESSAGE TABLE once and rebuilds its GIN index
(minutes on a large store; the table is locked meanwhile). Before that, `search_words` is filled for the stored
messages that need it (found by a pattern in SQL, folded in Python in batches). SQLite has no search document
and keeps its substring search; its `search_words` is filled all the same, as deliveries fill it.

`attachment_names`: the file names and types of a message's attachments, filled from the stored MIME tree of
the messages that have attachments, and a partial index over the attachment mail of each account that carries
them, so `filename:` and `has:attachment` read that index alone.
"""

from django.db import migrations, models

from mailboxes.search_document import SQL, attachments, words
from mailcore.mime import MimePart

BATCH = 500
_FIELDS = ("subject", "from_name", "from_address", "to_addresses", "cc_addresses", "search_text")
# The expression of 0006, before search_words.
_OLD_DOCUMENT = (
    "to_tsvector('simple'::regconfig, subject || ' ' || from_name || ' ' || from_address || ' ' || "
    "translate(from_address, '@.', '  ') || ' ' || to_addresses || ' ' || translate(to_addresses, '@.<>', '    ') "
    "|| ' ' || cc_addresses || ' ' || translate(cc_addresses, '@.<>', '    ') || ' ' || search_text)"
)


def _add_document(schema_editor, expression: str) -> None:
    schema_editor.execute(
        f"ALTER TABLE mailboxes_message ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({expression}) STORED"
    )
    schema_editor.execute("CREATE INDEX message_search ON mailboxes_message USING GIN (search_document)")


def drop_document(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE mailboxes_message DROP COLUMN search_document")  # and its index


def add_old_document(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _add_document(schema_editor, _OLD_DOCUMENT)


def _in_batches(rows, *fields: str):
    last = 0
    while batch := list(rows.filter(id__gt=last).order_by("id").values_list("id", *fields)[:BATCH]):
        last = batch[-1][0]
        yield batch


def fill(apps, schema_editor):
    Message = apps.get_model("mailboxes", "Message")
    for batch in _in_batches(Message.objects.filter(has_attachments=True), "structure"):
        named = [Message(id=id, attachment_names=attachments(MimePart.from_json(tree))) for id, tree in batch]
        Message.objects.bulk_update(named, ["attachment_names"])
    rows = Message.objects.all()
    if schema_editor.connection.vendor == "postgresql":
        # Only rows with a character beyond ASCII can need folding; the rest keep "".
        rows = rows.extra(where=[f"({' || '.join(_FIELDS)}) ~ '[^[:ascii:]]'"])
    for batch in _in_batches(rows, *_FIELDS):
        folded = [Message(id=row[0], search_words=words(*row[1:])) for row in batch]
        Message.objects.bulk_update([m for m in folded if m.search_words], ["search_words"])
    if schema_editor.connection.vendor == "postgresql":
        _add_document(schema_editor, SQL)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0011_message_changes_index")]

    operations = [
        migrations.RunPython(drop_document, add_old_document),
        migrations.AddField(
            model_name="message",
            name="search_words",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The search document folded (mailboxes.search_document); empty for ASCII",
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="attachment_names",
            field=models.TextField(
                blank=True, default="", help_text="File names and types of the attachments, for search"
            ),
        ),
        migrations.RunPython(fill, drop_document),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("has_attachments", True)),
                fields=["account", "internal_date", "id"],
                include=["attachment_names"],
                name="message_attachments",
            ),
        ),
    ]
