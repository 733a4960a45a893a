from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mailboxes import actions
from mailboxes.models import Account
from mailcore.idn import ascii_domain
from transfer import archive


class Command(BaseCommand):
    help = (
        "Export mail as mbox (mboxrd) or Maildir. ADDRESS: every folder of the account (a directory of .mbox "
        "files, or a Maildir++ tree), or one folder with --folder (one .mbox file, or one maildir). A domain "
        "instead of an address: one such directory per account, named by its address."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("address", help="an account's address, or a domain")
        parser.add_argument("--format", choices=archive.FORMATS, required=True)
        parser.add_argument("--out", "--path", dest="path", required=True, help="file or directory to write")
        parser.add_argument("--folder", help="only this folder")

    def handle(self, *args, **options) -> None:
        target = options["address"].strip()
        path = Path(options["path"])
        if "@" in target:
            account = Account.objects.filter(address__iexact=target).first()
            if account is None:
                raise CommandError(f"no account {target}")
            jobs = [(account, path)]
        else:
            accounts = Account.objects.filter(domain__name=ascii_domain(target)).order_by("address")
            if not accounts:
                raise CommandError(f"no accounts in the domain {target}")
            jobs = [(account, path / account.address) for account in accounts]
        total = 0
        for account, out in jobs:
            if options["format"] == "mbox" and options["folder"] and (out.is_dir() or len(jobs) > 1):
                raise CommandError(f"{out} is a directory: with --folder, mbox is written to one file per account")
            try:
                report = archive.export(account, options["format"], out, folder=options["folder"])
            except actions.ServiceError as error:
                raise CommandError(f"{account.address}: {error}") from None
            for line in report.lines():
                self.stdout.write(line if len(jobs) == 1 else f"{account.address} {line}")
            total += report.total
            self.stdout.write(f"exported {report.total} messages from {len(report.folders)} folders to {out}")
        if len(jobs) > 1:
            self.stdout.write(f"exported {total} messages of {len(jobs)} accounts")
