"""Each account counts its messages beside its bytes, kept by the same statements that keep its storage usage,
and may have a message limit (IMAP QUOTA's MESSAGE resource, RFC 9208 5.2). Existing accounts are counted here."""

from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_messages(apps, schema_editor):
    Account = apps.get_model("mailboxes", "Account")
    Message = apps.get_model("mailboxes", "Message")
    counted = Message.objects.filter(account_id=OuterRef("pk")).order_by().values("account_id").annotate(n=Count("id"))
    Account.objects.update(used_messages=Coalesce(Subquery(counted.values("n")), 0))


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0017_folder_names_nfc")]

    operations = [
        migrations.AddField(
            model_name="account",
            name="quota_messages",
            field=models.BigIntegerField(
                default=0, help_text="The most messages the account may hold (IMAP QUOTA's MESSAGE); 0 means no limit"
            ),
        ),
        migrations.AddField(
            model_name="account",
            name="used_messages",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_messages, migrations.RunPython.noop),
    ]
