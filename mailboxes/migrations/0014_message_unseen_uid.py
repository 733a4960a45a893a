"""The index of unseen messages gets the UID: a folder's first unseen message is then one index probe.

SELECT and EXAMINE tell IMAP clients the first unseen message ([UNSEEN], RFC 3501 6.3.1): the lowest UID with
\\Seen off. With `message_unseen (mailbox, seen)` PostgreSQL may walk the folder in UID order instead and test
each message until one is unseen: in a 100,000-message folder whose mail is read that read every message (a
tenth of a second per SELECT). `(mailbox, seen, uid)` answers from the index's first entry. It stays one
index with the same leading columns, so the unread counts that used it use it as before, and a delivery still
adds one entry to it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0013_expunge_log_horizon")]

    operations = [
        migrations.RemoveIndex(model_name="message", name="message_unseen"),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["mailbox", "seen", "uid"], name="message_unseen"),
        ),
    ]
