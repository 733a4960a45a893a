"""The base of the management commands that run one protocol's listeners (`manage.py imapd`, ...)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.checks import Tags
from django.core.management.base import BaseCommand

from mailsite import runtime, tls


class ListenerCommand(BaseCommand):
    """Run the listeners of `protocol` in the foreground (one process; start several to use more cores)."""

    protocol: str
    # The model checks only: the URL, admin and template checks load the whole web (about 26 MB in each
    # listener process) for nothing a listener serves; `manage.py web` and `check` still run them all.
    requires_system_checks = [Tags.models]

    def handle(self, *args: Any, **options: Any) -> None:
        tls.certificate_paths()  # made once here, before any listener (or child process) needs it
        asyncio.run(runtime.serve([self.protocol]))
