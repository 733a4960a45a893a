from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops import checks
from ops.targets import Target

# The listeners each service runs, by the port settings they bind.
SERVICES = {
    "smtpd": (
        ("smtp", "MAILSITE_SMTP_PORT"),
        ("submission", "MAILSITE_SUBMISSION_PORT"),
        ("smtps", "MAILSITE_SMTPS_PORT"),
    ),
    "pop3d": (("pop3", "MAILSITE_POP3_PORT"), ("pop3s", "MAILSITE_POP3S_PORT")),
    "imapd": (("imap", "MAILSITE_IMAP_PORT"), ("imaps", "MAILSITE_IMAPS_PORT")),
    "managesieve": (("managesieve", "MAILSITE_MANAGESIEVE_PORT"),),
    "web": (("web", "MAILSITE_HTTP_PORT"), ("https", "MAILSITE_HTTPS_PORT")),
}


class Command(BaseCommand):
    help = (
        "Readiness of this host's Mailsite: the database, the broker, and the listeners of the services named "
        f"({', '.join(SERVICES)}) on their configured ports, plus MAILSITE_READY_LISTENERS. Prints one line per "
        "check and exits 1 when any fails (a container health check)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("services", nargs="*", choices=sorted(SERVICES), metavar="service")

    def handle(self, *args, services: list[str], **options) -> None:
        targets = list(settings.MAILSITE_READY_LISTENERS)
        for service in services:
            for name, port_setting in SERVICES[service]:
                port = getattr(settings, port_setting)
                if port is not None:  # no HTTPS port: no HTTPS listener
                    targets.append(Target(name, settings.MAILSITE_BIND, port))
        results = checks.readiness(targets)
        for result in results:
            self.stdout.write(f"{result.name}: {'ok' if result.ok else result.reason}")
        failed = [result.name for result in results if not result.ok]
        if failed:
            raise CommandError(f"not ready: {', '.join(failed)}", returncode=1)
