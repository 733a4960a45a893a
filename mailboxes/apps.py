from django.apps import AppConfig
from django.db.models import Field


class MailboxesConfig(AppConfig):
    name = "mailboxes"
    verbose_name = "Mail store"

    def ready(self) -> None:
        from mailboxes.lookups import Among

        Field.register_lookup(Among)
