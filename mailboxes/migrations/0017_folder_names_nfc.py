"""Folder names are kept in Unicode NFC (RFC 9051 5.1, RFC 5198 2): names are normalised when they come in,
so a folder stored before in another form is renamed to its NFC form here. Should an account already have a
folder of that name, " (2)", " (3)", ... is added to the renamed one, and its subfolders follow it."""

import unicodedata

from django.db import migrations


def _free(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


def normalise_names(apps, schema_editor):
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    accounts = {
        account_id
        for account_id, name in Mailbox.objects.values_list("account_id", "name").iterator()
        if not unicodedata.is_normalized("NFC", name)
    }
    for account_id in sorted(accounts):
        folders = list(Mailbox.objects.filter(account_id=account_id).order_by("name"))
        taken = {folder.name for folder in folders}
        renamed: dict[str, str] = {}  # old name -> new name, parents before their children
        for folder in folders:
            parent, _, leaf = folder.name.rpartition("/")
            new_parent = renamed.get(parent, parent)
            if not unicodedata.is_normalized("NFC", leaf):
                leaf = unicodedata.normalize("NFC", leaf)
            elif new_parent == parent:
                continue
            new_name = _free(f"{new_parent}/{leaf}" if parent else leaf, taken)
            renamed[folder.name] = new_name
            taken.discard(folder.name)
            taken.add(new_name)
            folder.name = new_name
            folder.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0016_message_text_account")]

    operations = [migrations.RunPython(normalise_names, migrations.RunPython.noop)]
