from django.core.management.base import BaseCommand, CommandError

from mailboxes import services


class Command(BaseCommand):
    help = "Create a mail domain."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")

    def handle(self, *args, name: str, **options) -> None:
        try:
            domain = services.create_domain(name)
        except services.ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created domain {domain.name}")
