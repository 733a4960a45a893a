"""Manage an account's app passwords: create (printed once), list, revoke."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from credentials import actions
from credentials.models import AppPassword
from mailboxes.models import Account


class Command(BaseCommand):
    help = "Create, list or revoke app passwords: per-client passwords limited to IMAP, POP3 and/or SMTP."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make an app password and print it once")
        create.add_argument("address")
        create.add_argument("--name", required=True)
        create.add_argument("--protocols", default="imap,pop3,smtp", help="comma-separated: imap,pop3,smtp")
        listing = sub.add_parser("list", help="the account's app passwords")
        listing.add_argument("address")
        revoke = sub.add_parser("revoke", help="revoke at once, ending sessions that use it")
        revoke.add_argument("address")
        revoke.add_argument("name")
        require = sub.add_parser("require", help="whether mail clients must use app passwords")
        require.add_argument("address")
        require.add_argument("setting", choices=["on", "off"])

    def handle(self, *args, **options) -> None:
        account = Account.objects.filter(address=options["address"].strip().lower()).first()
        if account is None:
            raise CommandError(f"no account {options['address']}")
        try:
            if options["action"] == "create":
                row, secret = actions.create_app_password(account, options["name"], options["protocols"].split(","))
                self.stdout.write(secret)
                self.stderr.write(f"app password {row.name!r} for {row.protocols}; it is not shown again")
            elif options["action"] == "list":
                for row in AppPassword.objects.filter(account=account):
                    used = (
                        f"last used {row.last_used:%Y-%m-%d %H:%M} from {row.last_used_ip}"
                        if row.last_used
                        else "never used"
                    )
                    self.stdout.write(f"{row.name}\t{row.protocols}\tcreated {row.created:%Y-%m-%d %H:%M}\t{used}")
            elif options["action"] == "revoke":
                actions.revoke_app_password(account, options["name"])
                self.stdout.write(f"revoked {options['name']!r}")
            else:
                actions.set_require_app_passwords(account, options["setting"] == "on")
                self.stdout.write(f"app passwords required for mail clients: {options['setting']}")
        except actions.CredentialError as exc:
            raise CommandError(str(exc)) from None
