"""Message.crlf_size (the POP3 size, computed at write time) and a list index that covers deep pages."""

from django.db import migrations, models

from mailcore.crlf import crlf_size


def fill_crlf_size(apps, schema_editor):
    Message = apps.get_model("mailboxes", "Message")
    MessageBody = apps.get_model("mailboxes", "MessageBody")
    sizes: dict[int, int] = {}
    for message in Message.objects.filter(crlf_size__isnull=True).only("id", "body_id").iterator():
        if message.body_id not in sizes:
            sizes[message.body_id] = crlf_size(bytes(MessageBody.objects.get(pk=message.body_id).raw))
        Message.objects.filter(pk=message.pk).update(crlf_size=sizes[message.body_id])


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0002_message_search")]

    operations = [
        migrations.AddField(model_name="message", name="crlf_size", field=models.BigIntegerField(null=True)),
        migrations.RunPython(fill_crlf_size, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="message",
            name="crlf_size",
            field=models.BigIntegerField(help_text="Octets with every line ending in CRLF (POP3 sizes, RFC 1939 3)"),
        ),
        migrations.RemoveIndex(model_name="message", name="message_list"),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["mailbox", "-internal_date", "-id"], name="message_list"),
        ),
    ]
