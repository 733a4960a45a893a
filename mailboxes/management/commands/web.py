import asyncio

from django.core.management.base import BaseCommand

from mailsite import runtime, tls


class Command(BaseCommand):
    help = "Run the web listeners (webmail, admin, ACME challenges) in the foreground: HTTP, and HTTPS if set."

    def handle(self, *args, **options) -> None:
        tls.certificate_paths()
        asyncio.run(runtime.serve([], web=True))
