"""This machine's addresses, for tests that must reach a listener from somewhere other than loopback."""

from __future__ import annotations

import socket


def non_loopback_address() -> str | None:
    """The IPv4 address of the interface that would carry outgoing traffic, or None when there is none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return probe.getsockname()[0]
        except OSError:
            return None
