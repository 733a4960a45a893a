"""IMAP subscriptions move from a flag on each folder to a table of names per account, so that a subscription can
name no folder (SUBSCRIBE of a name that does not exist, a folder deleted: RFC 9051 6.3.7) and LIST (SUBSCRIBED)
can answer \\NonExistent for it (RFC 5258 3). Every folder subscribed before keeps its subscription."""

from django.db import migrations, models


def carry_over(apps, schema_editor):
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    Subscription = apps.get_model("mailboxes", "Subscription")
    rows = Mailbox.objects.filter(subscribed=True).order_by("account_id", "name").values_list("account_id", "name")
    Subscription.objects.bulk_create(
        (Subscription(account_id=account_id, name=name) for account_id, name in rows.iterator()), batch_size=1000
    )


def carry_back(apps, schema_editor):
    """Back to the flag: a folder is subscribed when its name is; subscriptions of names with no folder are lost."""
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    Subscription = apps.get_model("mailboxes", "Subscription")
    subscribed = Subscription.objects.filter(account_id=models.OuterRef("account_id"), name=models.OuterRef("name"))
    Mailbox.objects.update(subscribed=models.Exists(subscribed))


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0018_account_message_count")]

    operations = [
        migrations.CreateModel(
            name="Subscription",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=512)),
                (
                    "account",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="subscriptions",
                        to="mailboxes.account",
                    ),
                ),
            ],
            options={
                "ordering": ["account", "name"],
                "constraints": [models.UniqueConstraint(fields=("account", "name"), name="subscription_unique_name")],
            },
        ),
        migrations.RunPython(carry_over, carry_back),
        migrations.RemoveField(model_name="mailbox", name="subscribed"),
    ]
