from django.core.management.base import BaseCommand

from mailboxes.tasks import index_text


class Command(BaseCommand):
    help = (
        "Index every message not yet in IMAP SEARCH TEXT/BODY's trigram index (PostgreSQL), as Celery beat does "
        "each minute; for a store upgraded with much mail, run it once after migrating."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"{index_text()} messages indexed")
