from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailboxes import actions
from mailboxes.models import Account
from mailcore.idn import ascii_domain
from transfer import archive


class Command(BaseCommand):
    help = (
        "Import mbox (mboxrd, mboxo) or Maildir into an account: a directory of mbox files or a Maildir++ tree "
        "(folders created as needed), or one mbox file or maildir into --folder. A domain instead of an address: "
        "each subdirectory named by an address of the domain goes into that account. Flags and internal dates "
        "are kept; what is skipped is listed with the reason."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("address", help="an account's address, or a domain")
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
        target = options["address"].strip()
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        if "@" in target:
            account = Account.objects.filter(address__iexact=target).first()
            if account is None:
                raise CommandError(f"no account {target}")
            jobs = [(account, path)]
        else:
            accounts = {a.address: a for a in Account.objects.filter(domain__name=ascii_domain(target))}
            jobs = [(accounts[d.name.lower()], d) for d in sorted(path.iterdir()) if d.name.lower() in accounts]
            for directory in sorted(path.iterdir()):
                if directory.name.lower() not in accounts:
                    self.stdout.write(f"skipped {directory}: no account {directory.name} in {target}")
            if not jobs:
                raise CommandError(f"{path} holds no directory named by an account of {target}")
        imported = skipped = 0
        for account, source in jobs:
            try:
                report = archive.import_archive(
                    account,
                    options["format"],
                    source,
                    folder=options["folder"],
                    max_size=settings.MAILSITE_MAX_MESSAGE_SIZE,
                    crlf=options["crlf"],
                    date_from=options["date_from"],
                )
            except actions.ServiceError as error:
                raise CommandError(f"{account.address}: {error}") from None
            for line in report.lines():
                self.stdout.write(line if len(jobs) == 1 else f"{account.address} {line}")
            imported += report.total
            skipped += len(report.skipped)
        self.stdout.write(f"imported {imported} messages, skipped {skipped}")
