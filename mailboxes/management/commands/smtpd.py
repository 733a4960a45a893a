import os
import signal
import subprocess
import sys

from django.conf import settings

from mailsite import tls
from mailsite.commands import ListenerCommand
from smtpd import connections


class Command(ListenerCommand):
    help = (
        "Run the smtpd listeners in the foreground. With MAILSITE_SMTP_PROCESSES > 1 (or --processes) that many "
        "listener processes share each port (SO_REUSEPORT), so the kernel spreads connections over several cores; "
        "they share one count of each client's connections."
    )
    protocol = "smtpd"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--processes", type=int, default=settings.MAILSITE_SMTP_PROCESSES)

    def handle(self, *args, processes: int = 1, **options) -> None:
        if processes <= 1:
            super().handle(*args, **options)
            return
        tls.certificate_paths()  # made once here, not raced by the children
        table = settings.DATA_DIR / "run" / f"smtp-connections.{os.getpid()}"
        connections.create_table(table, processes)
        command = [sys.executable, sys.argv[0], "smtpd", "--processes", "1"]
        children = {
            subprocess.Popen(command, env={**os.environ, **connections.child_environment(table, row, processes)}): row
            for row in range(processes)
        }

        def stop(signum, frame) -> None:
            for child in children:
                child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while children:
                pid, status = os.wait()
                child = next((child for child in children if child.pid == pid), None)
                if child is not None:
                    child.returncode = os.waitstatus_to_exitcode(status)
                    # Its connections are gone with it: they must not count against their clients any more.
                    connections.clear_row(table, children.pop(child))
        finally:
            table.unlink(missing_ok=True)
