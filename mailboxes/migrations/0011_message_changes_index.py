"""Indexes for IMAP resynchronisation of big folders: what changed since a mod-sequence, and the keywords in use.

`SELECT folder (QRESYNC (uidvalidity modseq))` (RFC 7162 3.2.5) and every session's check for news ask for the
messages of one folder whose mod-sequence is above the client's; without an index that read every message of
the folder (a 100,000-message folder: hundreds of milliseconds per resync). SELECT also lists the keywords the
folder's messages use (RFC 3501 7.2.6 FLAGS), which read every message of the folder too.

Every index on the message table costs every delivery, so the design adds no entry per delivered message:
- `message_changes (mailbox, modseq)` takes the place of the foreign key's own index on `mailbox` alone, which
  was redundant (`message_unique_uid (mailbox, uid)` and `message_changes` both start with the folder, so
  lookups by folder and the folder's ON DELETE CASCADE use either). One index entry per message before and
  after; a new message's mod-sequence is the folder's highest, so it lands on the rightmost leaf of its folder.
- `message_keywords (mailbox, keywords) WHERE keywords <> ''` is partial: a message without keywords (nearly
  every delivery) has no entry, and the folder's keywords are read from the index alone.

A design without indexes was considered and rejected: the expunge log answers only for vanished messages, not
for flag changes, and a log of flag changes would cost a row per changed message instead of an index entry.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0010_recycle_bin")]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="mailbox",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="messages",
                to="mailboxes.mailbox",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["mailbox", "modseq"], name="message_changes"),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("keywords", ""), _negated=True),
                fields=["mailbox", "keywords"],
                name="message_keywords",
            ),
        ),
    ]
