import asyncio
import sys

from django.core.management.base import BaseCommand

from mailsite import runtime, supervise, tls


class Command(BaseCommand):
    help = (
        "Run the whole mail system in the foreground: every listener and the web server in one process, and a "
        "Celery worker; both are restarted if they die, and every line is labelled with its process."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")
        parser.add_argument("--mail-only", action="store_true", help="the listeners and web only, unsupervised")

    def handle(self, *args, no_worker: bool = False, mail_only: bool = False, **options) -> None:
        if mail_only:  # the "mail" process of a supervising runmail
            asyncio.run(runtime.serve(list(runtime.PROTOCOL_MODULES), web=True))
            return
        supervise.label_own_lines("runmail")
        tls.certificate_paths()  # make the self-signed pair before any listener needs it
        mail = supervise.Supervised("mail", [sys.executable, sys.argv[0], "runmail", "--mail-only"])
        asyncio.run(runtime.supervise([mail] if no_worker else [mail, runtime.worker()]))
