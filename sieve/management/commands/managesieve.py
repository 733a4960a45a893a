import asyncio

from django.core.management.base import BaseCommand

from mailsite import runtime, tls


class Command(BaseCommand):
    help = "Run the ManageSieve listener in the foreground (one process; start several to use more cores)."

    def handle(self, *args, **options) -> None:
        tls.certificate_paths()
        asyncio.run(runtime.serve(["managesieve"]))
