"""PostgreSQL announces a folder's changes itself: a trigger sends the change hub's NOTIFY whenever a folder's
`highestmodseq` rises, which every change of its messages does (the SQLite hub polls that same column).

The writers used to send the NOTIFY as a statement of their own at the end of each action, one more round trip
while they held the folder's lock; now it costs them none. NOTIFY is transactional, so the listeners still hear
of a change exactly when it commits, once per folder and transaction (PostgreSQL folds identical payloads).
"""

from django.db import migrations

# The channel and payload of mailboxes.changes (CHANNEL, "account:folder"), written out: a migration is history.
FORWARD = """
CREATE FUNCTION mailsite_folder_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mailsite_changes', NEW.account_id || ':' || NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER mailbox_changed AFTER UPDATE OF highestmodseq ON mailboxes_mailbox
    FOR EACH ROW WHEN (NEW.highestmodseq > OLD.highestmodseq) EXECUTE FUNCTION mailsite_folder_changed();
"""
BACKWARD = """
DROP TRIGGER mailbox_changed ON mailboxes_mailbox;
DROP FUNCTION mailsite_folder_changed();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0024_expunge_index")]

    operations = [migrations.RunPython(forward, backward)]
