import secrets

from django.core.management.base import BaseCommand

from mailboxes import actions
from mailboxes.models import Account

DEMO_DOMAIN = "example.test"
DEMO_ADDRESS = f"demo@{DEMO_DOMAIN}"


class Command(BaseCommand):
    help = "On an empty database, create a demo domain and a staff account and print their credentials."

    def handle(self, *args, **options) -> None:
        if Account.objects.exists():
            self.stdout.write("accounts exist already; no demo account created")
            return
        password = secrets.token_urlsafe(12)
        actions.create_domain(DEMO_DOMAIN)
        actions.create_account(DEMO_ADDRESS, password, display_name="Demo User", is_staff=True, is_superuser=True)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "  Demo account created (also a Django admin superuser):",
                    f"    address:  {DEMO_ADDRESS}",
                    f"    password: {password}",
                    "",
                ]
            )
        )
