"""The expunge log is pruned: each logged expunge has its time, and each folder the highest mod-sequence it forgot.

Expunges already logged get the time of this migration, so they are kept for MAILSITE_IMAP_EXPUNGE_KEEP from now.
"""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0012_message_search_words")]

    operations = [
        migrations.AddField(
            model_name="expungedmessage",
            name="expunged",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="mailbox",
            name="expunge_horizon",
            field=models.BigIntegerField(
                default=0,
                help_text="The expunge log forgot this folder's expunges up to this mod-sequence: a client "
                "resynchronising from before it is told every UID that is gone (RFC 7162 3.2.6)",
            ),
        ),
    ]
