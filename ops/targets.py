"""Listeners a readiness check connects to, named by how they speak (no Django: settings parse them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Listener name -> protocol it speaks.
KINDS = {
    "smtp": "smtp",
    "submission": "smtp",
    "smtps": "smtp",
    "pop3": "pop3",
    "pop3s": "pop3",
    "imap": "imap",
    "imaps": "imap",
    "managesieve": "managesieve",
    "web": "web",
    "https": "web",
}
IMPLICIT_TLS = frozenset({"smtps", "pop3s", "imaps", "https"})


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int

    @property
    def kind(self) -> str:
        return KINDS[self.name]

    def __str__(self) -> str:
        return f"{self.name}@{self.host}:{self.port}"


def parse(items: Iterable[str]) -> tuple[Target, ...]:
    """MAILSITE_READY_LISTENERS entries, "name=host:port" (e.g. "smtp=smtpd:25"); ValueError names a bad one."""
    targets = []
    for item in items:
        name, _, address = item.partition("=")
        host, _, port = address.rpartition(":")
        if name not in KINDS or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not name=host:port with name one of {', '.join(sorted(KINDS))}")
        targets.append(Target(name, host.strip("[]"), int(port)))
    return tuple(targets)
