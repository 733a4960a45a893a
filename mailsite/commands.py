"""The base of the management commands that run mail listeners (`manage.py listen`, `imapd`, ...)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandParser

from mailsite import runtime, tls


class ListenerCommand(BaseCommand):
    """Run the listeners of `protocols` in the foreground: in this process, or with `--processes N` (offered
    where SMTP is among them) in N child processes that share each port (SO_REUSEPORT), so the kernel spreads
    connections over several cores."""

    protocols: tuple[str, ...]
    # The model checks only: the URL, admin and template checks load the whole web (about 26 MB in each
    # listener process) for nothing a listener serves; `manage.py web` and `check` still run them all.
    requires_system_checks = [Tags.models]

    def add_arguments(self, parser: CommandParser) -> None:
        if "smtpd" in self.protocols:
            parser.add_argument("--processes", type=int, default=settings.MAILSITE_SMTP_PROCESSES)

    def handle(self, *args: Any, processes: int = 1, **options: Any) -> None:
        tls.certificate_paths()  # made once here, before any listener (or child process) needs it
        if processes <= 1:
            asyncio.run(runtime.serve(self.protocols))
        else:
            _run_children(processes)


def _run_children(processes: int) -> None:
    """Run this command again with `--processes 1` in `processes` children until SIGTERM or SIGINT; the SMTP
    listeners among them count each client's connections together (smtpd/connections.py)."""
    from smtpd import connections

    table = settings.DATA_DIR / "run" / f"smtp-connections.{os.getpid()}"
    connections.create_table(table, processes)
    command = [sys.executable, sys.argv[0], sys.argv[1], "--processes", "1"]
    children = {
        subprocess.Popen(command, env={**os.environ, **connections.child_environment(table, row, processes)}): row
        for row in range(processes)
    }

    def stop(signum: int, frame: object) -> None:
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
