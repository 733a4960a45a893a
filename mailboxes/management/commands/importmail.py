from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailboxes import actions
from mailboxes.models import Account
from transfer import archive


class Command(BaseCommand):
    help = (
        "Import mbox (mboxrd, mboxo) or Maildir into an account: a directory of mbox files or a Maildir++ tree "
        "(folders created as needed), or one mbox file or maildir into --folder. Flags and internal dates are "
        "kept; what is skipped is listed with the reason."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("address")
        parser.add_argument("--format", choices=archive.FORMATS, required=True)
        parser.add_argument("--in", "--path", dest="path", required=True, help="file or directory to read")
        parser.add_argument("--folder", help="import one mbox file or maildir into this folder")
        parser.add_argument(
            "--crlf",
            action="store_true",
            help="store messages whose lines end in a bare LF (Unix files) with CRLF; by default bytes are kept",
        )
        parser.add_argument(
            "--date-from",
            choices=("archive", "header"),
            default="archive",
            help="internal dates from the archive (From_ line, file time) or from each message's Date field",
        )

    def handle(self, *args, **options) -> None:
        account = Account.objects.filter(address__iexact=options["address"].strip()).first()
        if account is None:
            raise CommandError(f"no account {options['address']}")
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        try:
            report = archive.import_archive(
                account,
                options["format"],
                path,
                folder=options["folder"],
                max_size=settings.MAILSITE_MAX_MESSAGE_SIZE,
                crlf=options["crlf"],
                date_from=options["date_from"],
            )
        except actions.ServiceError as error:
            raise CommandError(str(error)) from None
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(f"imported {report.total} messages, skipped {len(report.skipped)}")
