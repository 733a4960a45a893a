from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailsite import acme


class Command(BaseCommand):
    help = "Obtain the ACME certificate now if it is missing or due for renewal (--force: renew anyway)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="renew even if the certificate is not due")

    def handle(self, *args, force: bool = False, **options) -> None:
        if not settings.MAILSITE_ACME:
            self.stdout.write("ACME is off (MAILSITE_ACME); the configured or self-signed certificate is served")
            return
        try:
            renewed = acme.obtain_if_due(force=force)
        except Exception as exc:  # the acme library and requests raise many types; say which and why
            raise CommandError(f"ACME: no certificate from {settings.MAILSITE_ACME_DIRECTORY}: {exc!r}") from exc
        expiry = acme.not_after()
        state = "obtained" if renewed else "not due"
        self.stdout.write(f"certificate for {', '.join(acme.names())}: {state}; valid until {expiry}")
