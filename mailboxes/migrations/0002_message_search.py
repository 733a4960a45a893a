"""Full-text search over messages for the webmail (PostgreSQL only).

A GIN index on a to_tsvector expression over subject, sender, recipients and body text. The expression must stay
identical to `webmail.queries.SEARCH_DOCUMENT` or PostgreSQL will not use the index. Addresses appear twice: as
written (the parser keeps "alice@example.com" as one email token) and with "@", "." and angle brackets turned
into spaces, so a search for "alice" or "example" finds them too. SQLite has no such index; the webmail falls
back to substring matching there.
"""

from django.db import migrations

SEARCH_DOCUMENT = (
    "to_tsvector('simple'::regconfig, subject || ' ' || from_name || ' ' || from_address || ' ' || "
    "translate(from_address, '@.', '  ') || ' ' || to_addresses || ' ' || translate(to_addresses, '@.<>', '    ') "
    "|| ' ' || cc_addresses || ' ' || translate(cc_addresses, '@.<>', '    ') || ' ' || search_text)"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX message_search ON mailboxes_message USING GIN ({SEARCH_DOCUMENT})")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS message_search")


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
