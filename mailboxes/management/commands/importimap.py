import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailboxes.models import Account
from transfer.imap_import import Importer, Progress
from transfer.imap_source import Endpoint, SourceError


class Command(BaseCommand):
    help = (
        "Import every folder of another IMAP server's account into ADDRESS: flags, keywords, internal dates and "
        "the exact bytes. Run it again after an interruption: it goes on where it stopped, without duplicates."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("address", help="the local account to import into")
        parser.add_argument("--host", required=True)
        parser.add_argument("--port", type=int, help="default 993 with --tls, else 143")
        parser.add_argument("--user", required=True, help="the remote account's login")
        parser.add_argument("--password-stdin", action="store_true", required=True, help="read it from stdin")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--tls", dest="mode", action="store_const", const="tls", help="implicit TLS (default)")
        mode.add_argument("--starttls", dest="mode", action="store_const", const="starttls")
        mode.add_argument("--plain", dest="mode", action="store_const", const="plain", help="no TLS at all")
        parser.add_argument("--cafile", help="trust this CA bundle instead of the system's")
        parser.add_argument("--max-rate", type=float, default=0.0, help="messages per second at most (0: no limit)")
        parser.add_argument("--retries", type=int, default=5, help="reconnects in a row before giving up")

    def handle(self, *args, **options) -> None:
        account = Account.objects.filter(address__iexact=options["address"].strip()).first()
        if account is None:
            raise CommandError(f"no account {options['address']}")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password on stdin")
        mode = options["mode"] or "tls"
        endpoint = Endpoint(
            options["host"],
            options["port"] or (993 if mode == "tls" else 143),
            options["user"],
            password,
            mode,
            options["cafile"],
        )
        verbosity = options["verbosity"]

        def progress(done: Progress) -> None:
            if verbosity > 1:
                self.stdout.write(f"{done.folder}: {done.messages_done} of {done.messages_total} messages")

        importer = Importer(
            account,
            endpoint,
            max_size=settings.MAILSITE_MAX_MESSAGE_SIZE,
            max_rate=options["max_rate"],
            retries=options["retries"],
            progress=progress,
        )
        try:
            report = importer.run()
        except SourceError as error:
            for line in importer.report.lines():
                self.stdout.write(line)
            raise CommandError(
                f"{error} ({importer.report.total} messages imported so far; run again to resume)"
            ) from None
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(
            f"imported {report.total} messages, {report.already} imported before, skipped {len(report.skipped)}"
            + (f", {report.reconnects} reconnects" if report.reconnects else "")
        )
