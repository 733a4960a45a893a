"""Message.imap_body: FETCH BODY rendered once at delivery, with parameters in the order BODYSTRUCTURE has.

Rendered later from the `structure` JSON, BODY listed parameters in jsonb's key order (shortest key first).
"""

from django.db import migrations, models

from mailcore.imap_wire import message_wire
from mailcore.mime import parse_message


def fill_imap_body(apps, schema_editor):
    Message = apps.get_model("mailboxes", "Message")
    MessageBody = apps.get_model("mailboxes", "MessageBody")
    forms: dict[int, bytes] = {}
    for message in Message.objects.filter(imap_body__isnull=True).only("id", "body_id").iterator():
        if message.body_id not in forms:
            forms[message.body_id] = message_wire(parse_message(bytes(MessageBody.objects.get(pk=message.body_id).raw)))[2]
        Message.objects.filter(pk=message.pk).update(imap_body=forms[message.body_id])


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0004_message_imap_wire")]

    operations = [
        migrations.AddField(model_name="message", name="imap_body", field=models.BinaryField(null=True)),
        migrations.RunPython(fill_imap_body, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="message",
            name="imap_body",
            field=models.BinaryField(help_text="BODY, the non-extensible BODYSTRUCTURE (RFC 3501 7.4.2)"),
        ),
    ]
