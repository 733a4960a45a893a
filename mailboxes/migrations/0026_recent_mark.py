"""\\Recent's mark moves from the folder's row to a row of its own (RecentMark): a session taking the folder's
recent messages then waits only for another session taking them, not for the folder's writers (in the IMAP mix,
half a session on average was waiting there for the folder's lock). Marks still at 1 need no row."""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
INSERT INTO mailboxes_recentmark (mailbox_id, first_uid, taken_from)
SELECT id, first_recent_uid, first_recent_uid FROM mailboxes_mailbox WHERE first_recent_uid > 1
"""
BACKWARD = """
UPDATE mailboxes_mailbox SET first_recent_uid = COALESCE(
    (SELECT first_uid FROM mailboxes_recentmark r WHERE r.mailbox_id = mailboxes_mailbox.id), 1
)
"""


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0025_notify_on_change")]

    operations = [
        migrations.CreateModel(
            name="RecentMark",
            fields=[
                (
                    "mailbox",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="recent_mark",
                        serialize=False,
                        to="mailboxes.mailbox",
                    ),
                ),
                ("first_uid", models.BigIntegerField(default=1)),
                (
                    "taken_from",
                    models.BigIntegerField(default=1, help_text="first_uid before the last claim moved it"),
                ),
            ],
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.RemoveField(model_name="mailbox", name="first_recent_uid"),
    ]
