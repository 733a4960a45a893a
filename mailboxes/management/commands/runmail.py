import asyncio

from django.core.management.base import BaseCommand

from mailsite import runtime, tls


class Command(BaseCommand):
    help = "Run the whole mail system in the foreground: every listener, the web server and a Celery worker."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")

    def handle(self, *args, no_worker: bool = False, **options) -> None:
        tls.certificate_paths()  # make the self-signed pair before any listener needs it
        asyncio.run(runtime.serve(list(runtime.PROTOCOL_MODULES), web=True, worker=not no_worker))
