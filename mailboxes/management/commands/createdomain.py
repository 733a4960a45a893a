from django.core.management.base import BaseCommand, CommandError

from mailboxes import actions


class Command(BaseCommand):
    help = "Create a mail domain."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")

    def handle(self, *args, name: str, **options) -> None:
        try:
            domain = actions.create_domain(name)
        except actions.ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created domain {domain.name}")
