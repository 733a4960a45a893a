from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mailboxes import actions
from mailboxes.models import Account
from transfer import archive


class Command(BaseCommand):
    help = (
        "Export an account's mail as mbox (mboxrd) or Maildir: every folder (a directory of .mbox files, or a "
        "Maildir++ tree), or one folder with --folder (one .mbox file, or one maildir)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("address")
        parser.add_argument("--format", choices=archive.FORMATS, required=True)
        parser.add_argument("--out", "--path", dest="path", required=True, help="file or directory to write")
        parser.add_argument("--folder", help="only this folder")

    def handle(self, *args, **options) -> None:
        account = Account.objects.filter(address__iexact=options["address"].strip()).first()
        if account is None:
            raise CommandError(f"no account {options['address']}")
        path = Path(options["path"])
        if options["format"] == "mbox" and options["folder"] and path.is_dir():
            raise CommandError(f"{path} is a directory: with --folder, mbox is written to one file")
        try:
            report = archive.export(account, options["format"], path, folder=options["folder"])
        except actions.ServiceError as error:
            raise CommandError(str(error)) from None
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(f"exported {report.total} messages from {len(report.folders)} folders to {path}")
