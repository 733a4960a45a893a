"""The shared authenticate service: results, and throttling per address and per client IP."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from mailboxes import actions
from mailboxes.models import AuthFailure
from tests.conftest import PASSWORD


@pytest.fixture
def alice(make_account):
    return make_account("alice@example.com")


def test_good_password_and_case_insensitive_address(alice) -> None:
    result = actions.authenticate("Alice@Example.com", PASSWORD, remote_ip="192.0.2.1", protocol="imap")
    assert result.ok
    assert result.account == alice


@pytest.mark.parametrize(
    ("address", "password"),
    [("alice@example.com", "wrong"), ("nobody@example.com", PASSWORD), ("alice@example.com", "")],
)
def test_failures_look_the_same(alice, address: str, password: str) -> None:
    result = actions.authenticate(address, password, remote_ip="192.0.2.1", protocol="pop3")
    assert (result.account, result.throttled) == (None, False)


def test_disabled_account_cannot_log_in(alice) -> None:
    alice.is_active = False
    alice.save()
    assert not actions.authenticate("alice@example.com", PASSWORD, remote_ip=None, protocol="smtp").ok


def test_throttled_per_address_even_with_the_right_password(alice, settings) -> None:
    settings.MAILSITE_AUTH_MAX_FAILURES = 3
    for n in range(3):
        assert not actions.authenticate("alice@example.com", "bad", remote_ip=f"192.0.2.{n}", protocol="imap").ok
    result = actions.authenticate("alice@example.com", PASSWORD, remote_ip="192.0.2.99", protocol="web")
    assert result.throttled
    assert not result.ok


def test_throttled_per_ip_across_addresses(alice, settings) -> None:
    settings.MAILSITE_AUTH_MAX_IP_FAILURES = 4
    for n in range(4):
        actions.authenticate(f"guess{n}@example.com", "x", remote_ip="198.51.100.7", protocol="smtp")
    assert actions.authenticate("alice@example.com", PASSWORD, remote_ip="198.51.100.7", protocol="pop3").throttled
    assert actions.authenticate("alice@example.com", PASSWORD, remote_ip="198.51.100.8", protocol="pop3").ok


def test_failures_expire_with_the_window(alice, settings) -> None:
    settings.MAILSITE_AUTH_MAX_FAILURES = 2
    settings.MAILSITE_AUTH_WINDOW = 1
    for _ in range(2):
        actions.authenticate("alice@example.com", "bad", remote_ip=None, protocol="imap")
    assert actions.authenticate("alice@example.com", PASSWORD, remote_ip=None, protocol="imap").throttled
    AuthFailure.objects.update(created=timezone.now() - datetime.timedelta(seconds=5))
    assert actions.authenticate("alice@example.com", PASSWORD, remote_ip=None, protocol="imap").ok


def test_success_clears_the_address_failures(alice, settings) -> None:
    settings.MAILSITE_AUTH_MAX_FAILURES = 3
    for _ in range(2):
        actions.authenticate("alice@example.com", "bad", remote_ip=None, protocol="imap")
    assert actions.authenticate("alice@example.com", PASSWORD, remote_ip=None, protocol="imap").ok
    for _ in range(2):
        actions.authenticate("alice@example.com", "bad", remote_ip=None, protocol="imap")
    assert actions.authenticate("alice@example.com", PASSWORD, remote_ip=None, protocol="imap").ok
