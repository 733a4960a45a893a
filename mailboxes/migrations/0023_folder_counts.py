"""Each folder keeps the counts IMAP STATUS and SELECT report (messages, unseen, \\Deleted, their sizes) in its
row, kept by the statements that already update the row (mailboxes.actions.counters). Existing folders are
counted here; going back drops the columns."""

from django.db import migrations, models

_FILL = """
    UPDATE mailboxes_mailbox SET message_count = c.n, unseen_count = c.unseen, deleted_count = c.deleted,
        total_size = c.size, deleted_size = c.deleted_size
    FROM (
        SELECT mailbox_id, COUNT(*) AS n, SUM(CASE WHEN seen THEN 0 ELSE 1 END) AS unseen,
            SUM(CASE WHEN deleted THEN 1 ELSE 0 END) AS deleted, SUM(size) AS size,
            SUM(CASE WHEN deleted THEN size ELSE 0 END) AS deleted_size
        FROM mailboxes_message GROUP BY mailbox_id
    ) AS c
    WHERE mailboxes_mailbox.id = c.mailbox_id
"""


def _field(help_text: str = "") -> models.BigIntegerField:
    return models.BigIntegerField(default=0, editable=False, help_text=help_text)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0022_search_document_after_commit")]

    operations = [
        migrations.AddField(model_name="mailbox", name="message_count", field=_field()),
        migrations.AddField(model_name="mailbox", name="unseen_count", field=_field()),
        migrations.AddField(model_name="mailbox", name="deleted_count", field=_field("Messages flagged \\Deleted")),
        migrations.AddField(model_name="mailbox", name="total_size", field=_field("Octets of all messages")),
        migrations.AddField(
            model_name="mailbox", name="deleted_size", field=_field("Octets of the \\Deleted messages")
        ),
        # UPDATE ... FROM: PostgreSQL, and SQLite from 3.33.
        migrations.RunSQL(_FILL, migrations.RunSQL.noop),
    ]
