"""Message.imap_envelope and imap_bodystructure: ENVELOPE and BODYSTRUCTURE rendered once at delivery."""

from django.db import migrations, models

from mailcore.imap_wire import message_wire
from mailcore.mime import parse_message


def fill_imap_wire(apps, schema_editor):
    Message = apps.get_model("mailboxes", "Message")
    MessageBody = apps.get_model("mailboxes", "MessageBody")
    # Rendered from the stored bytes with today's parser, as a new delivery would be; copies share a body.
    forms: dict[int, tuple[bytes, ...]] = {}
    for message in Message.objects.filter(imap_envelope__isnull=True).only("id", "body_id").iterator():
        if message.body_id not in forms:
            forms[message.body_id] = message_wire(parse_message(bytes(MessageBody.objects.get(pk=message.body_id).raw)))
        envelope, bodystructure = forms[message.body_id][:2]
        Message.objects.filter(pk=message.pk).update(imap_envelope=envelope, imap_bodystructure=bodystructure)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0003_message_crlf_size_list_index")]

    operations = [
        migrations.AddField(model_name="message", name="imap_envelope", field=models.BinaryField(null=True)),
        migrations.AddField(model_name="message", name="imap_bodystructure", field=models.BinaryField(null=True)),
        migrations.RunPython(fill_imap_wire, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="message",
            name="imap_envelope",
            field=models.BinaryField(help_text="ENVELOPE as IMAP sends it (RFC 3501 7.4.2)"),
        ),
        migrations.AlterField(
            model_name="message",
            name="imap_bodystructure",
            field=models.BinaryField(help_text="BODYSTRUCTURE as IMAP sends it (RFC 3501 7.4.2)"),
        ),
    ]
