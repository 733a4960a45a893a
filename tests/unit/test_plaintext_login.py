"""Who may send a password before TLS: one rule for POP3 and IMAP (mailsite.tls.plaintext_login_allowed)."""

from __future__ import annotations

import pytest

from mailsite.tls import plaintext_login_allowed


@pytest.mark.parametrize(
    ("remote_ip", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("192.0.2.10", False),
        ("2001:db8::1", False),
        ("fe80::1%eth0", False),
        ("", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_loopback_only_by_default(settings, remote_ip: str | None, allowed: bool) -> None:
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = False
    assert plaintext_login_allowed(remote_ip) is allowed


def test_the_setting_allows_everyone(settings) -> None:
    settings.MAILSITE_ALLOW_PLAINTEXT_AUTH = True
    assert plaintext_login_allowed("192.0.2.10")
