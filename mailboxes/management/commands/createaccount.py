import sys

from django.core.management.base import BaseCommand, CommandError

from mailboxes import actions


class Command(BaseCommand):
    help = "Create a mail account (its domain must exist) with the standard folders."

    def add_arguments(self, parser) -> None:
        parser.add_argument("address")
        secret = parser.add_mutually_exclusive_group(required=True)
        secret.add_argument("--password")
        secret.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        parser.add_argument("--quota", type=int, default=0, help="quota in bytes (0: no limit)")
        parser.add_argument("--name", default="", help="display name")
        parser.add_argument("--staff", action="store_true", help="may use Django admin (as superuser)")

    def handle(self, *args, **options) -> None:
        password = sys.stdin.readline().rstrip("\r\n") if options["password_stdin"] else options["password"]
        if not password:
            raise CommandError("the password must not be empty")
        try:
            account = actions.create_account(
                options["address"],
                password,
                quota_bytes=options["quota"],
                display_name=options["name"],
                is_staff=options["staff"],
                is_superuser=options["staff"],
            )
        except actions.ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created account {account.address}")
