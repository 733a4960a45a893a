"""Credentials in the store and on the security settings page: app passwords, TOTP, recovery codes."""

from __future__ import annotations

import datetime

import pyotp
import pytest
from django.urls import reverse
from django.utils import timezone

from credentials import actions, tokens, totp
from credentials.models import AppPassword, RecoveryCode, SignIn, TotpDevice
from mailboxes.actions import authenticate
from mailboxes.models import Account
from tests.conftest import PASSWORD


@pytest.fixture
def alice(make_account) -> Account:
    return make_account("alice@example.com")


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def test_generated_secrets_are_typed_leniently_and_stored_as_digests(alice) -> None:
    row, secret = actions.create_app_password(alice, "phone", ["IMAP", "smtp"])
    assert row.protocols == "imap,smtp"
    assert len(secret) == 24
    assert secret.count("-") == 4
    assert secret not in AppPassword.objects.values_list("digest", flat=True)
    assert tokens.digest(secret.upper().replace("-", " ")) == row.digest
    assert tokens.looks_generated(secret, tokens.APP_PASSWORD_LENGTH)
    assert not tokens.looks_generated(PASSWORD, tokens.APP_PASSWORD_LENGTH)


def test_totp_code_is_accepted_once_and_only_within_the_window(alice) -> None:
    secret = actions.start_totp(alice)
    app = pyotp.TOTP(secret)
    now = timezone.now()
    with pytest.raises(actions.CredentialError):
        actions.confirm_totp(alice, "000000" if app.at(now) != "000000" else "111111")
    codes = actions.confirm_totp(alice, app.at(now))
    assert len(codes) == 10
    assert RecoveryCode.objects.filter(account=alice).count() == 10
    later = app.at(now + datetime.timedelta(seconds=30))
    assert actions.accept_second_factor(alice.pk, later) == "TOTP"
    assert actions.accept_second_factor(alice.pk, later) is None  # never twice (RFC 6238 5.2)
    assert actions.accept_second_factor(alice.pk, app.at(now)) is None  # an older step after a newer one
    far = app.at(now + datetime.timedelta(minutes=5))
    assert actions.accept_second_factor(alice.pk, far) is None  # outside the drift window


def test_matching_step_is_pure_and_strict() -> None:
    secret = totp.new_secret()
    now = datetime.datetime(2026, 1, 1, 12, 0, 10, tzinfo=datetime.UTC)
    app = pyotp.TOTP(secret)
    step = app.timecode(now)
    assert totp.matching_step(secret, app.at(now), now, after=0) == step
    assert totp.matching_step(secret, " " + app.at(now)[:3] + " " + app.at(now)[3:], now, after=0) == step
    assert totp.matching_step(secret, app.at(now), now, after=step) is None
    assert totp.matching_step(secret, app.at(now) + "0", now, after=0) is None
    assert totp.matching_step(secret, "abcdef", now, after=0) is None


def test_recovery_codes_work_once_and_new_ones_replace_old(alice) -> None:
    actions.confirm_totp(alice, pyotp.TOTP(actions.start_totp(alice)).now())
    first = actions.new_recovery_codes(alice)
    assert actions.accept_second_factor(alice.pk, first[0].upper()) == "recovery code"
    assert actions.accept_second_factor(alice.pk, first[0]) is None
    second = actions.new_recovery_codes(alice)
    assert actions.accept_second_factor(alice.pk, first[1]) is None
    assert actions.accept_second_factor(alice.pk, second[1]) == "recovery code"


def test_enrolment_refused_while_on_and_disable_clears_everything(alice) -> None:
    actions.confirm_totp(alice, pyotp.TOTP(actions.start_totp(alice)).now())
    with pytest.raises(actions.CredentialError, match="already on"):
        actions.start_totp(alice)
    actions.disable_totp(alice)
    assert not TotpDevice.objects.exists()
    assert not RecoveryCode.objects.exists()


def test_security_page_shows_a_new_app_password_once(signed_in, alice) -> None:
    response = signed_in.post(reverse("webmail:app_password_create"), {"name": "Phone", "protocols": ["imap", "pop3"]})
    assert response.status_code == 200
    secret = response.context["new_app_password"]
    assert secret.encode() in response.content
    page = signed_in.get(reverse("webmail:security"))
    assert secret.encode() not in page.content
    assert b'data-app-password="Phone"' in page.content
    assert b"IMAP,POP3" in page.content
    refused = signed_in.post(reverse("webmail:app_password_create"), {"name": "Phone", "protocols": ["imap"]})
    assert refused.status_code == 400
    signed_in.post(reverse("webmail:app_password_revoke"), {"name": "Phone"})
    assert not AppPassword.objects.filter(account=alice).exists()


def test_changing_the_password_needs_the_current_one(signed_in, alice) -> None:
    url = reverse("webmail:change_password")
    wrong = signed_in.post(url, {"current": "nope", "new": "a new long password", "repeat": "a new long password"})
    assert wrong.status_code == 403
    assert b"current password is wrong" in wrong.content
    short = signed_in.post(url, {"current": PASSWORD, "new": "short", "repeat": "short"})
    assert short.status_code == 400
    done = signed_in.post(url, {"current": PASSWORD, "new": "a new long password", "repeat": "a new long password"})
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a new long password")
    assert signed_in.get(reverse("webmail:security")).status_code == 200  # this session stays signed in


def test_second_step_is_needed_and_pending_state_is_not_a_session(client, alice) -> None:
    actions.confirm_totp(alice, pyotp.TOTP(actions.start_totp(alice)).now())
    response = client.post(reverse("webmail:login"), {"address": alice.address, "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("webmail:login_totp")
    assert client.get(reverse("webmail:home")).status_code == 302  # not signed in yet
    assert client.post(reverse("webmail:login_totp"), {"code": "12345678901"}).status_code == 401


def test_admin_sign_in_goes_through_the_webmail_sign_in(client) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response.url == "/login/?next=/admin/"


def test_admin_resets_two_factor_and_revokes_app_passwords(client, make_account, alice) -> None:
    make_account("admin@example.com", is_staff=True, is_superuser=True)
    client.force_login(Account.objects.get(address="admin@example.com"))
    actions.confirm_totp(alice, pyotp.TOTP(actions.start_totp(alice)).now())
    row, _ = actions.create_app_password(alice, "phone", ["imap"])
    for model in ["totpdevice", "apppassword", "signin", "passkey"]:
        assert client.get(reverse(f"admin:credentials_{model}_changelist")).status_code == 200
    client.post(
        reverse("admin:credentials_totpdevice_changelist"),
        {"action": "reset", "_selected_action": [alice.pk]},
    )
    assert not actions.totp_enabled(alice.pk)
    assert not RecoveryCode.objects.filter(account=alice).exists()
    client.post(reverse("admin:credentials_apppassword_changelist"), {"action": "revoke", "_selected_action": [row.pk]})
    assert not AppPassword.objects.exists()


def test_a_browser_signs_another_out(alice) -> None:
    from django.test import Client

    phone, laptop = Client(HTTP_USER_AGENT="Phone browser"), Client(HTTP_USER_AGENT="Laptop browser")
    for browser in (phone, laptop):
        response = browser.post(reverse("webmail:login"), {"address": alice.address, "password": PASSWORD})
        assert response.status_code == 302
    page = laptop.get(reverse("webmail:security"))
    sessions = page.context["web_sessions"]
    assert [s.user_agent for s in sessions] == ["Laptop browser", "Phone browser"]
    assert b'data-session="this"' in page.content
    assert phone.session.session_key.encode() not in page.content  # keys never reach a page
    own = laptop.post(reverse("webmail:end_session"), {"session": sessions[0].pk})
    assert own.status_code == 302
    assert laptop.get(reverse("webmail:security")).status_code == 200  # this browser is not signed out by it
    laptop.post(reverse("webmail:end_session"), {"session": sessions[1].pk})
    assert phone.get(reverse("webmail:security")).url.startswith(reverse("webmail:login"))
    assert [s.user_agent for s in actions.web_sessions(alice)] == ["Laptop browser"]


def test_managesieve_takes_app_passwords_and_honours_their_requirement(alice) -> None:
    _, secret = actions.create_app_password(alice, "Thunderbird filters", ["sieve"])
    assert authenticate(alice.address, secret, remote_ip=None, protocol="sieve").ok
    assert not authenticate(alice.address, secret, remote_ip=None, protocol="imap").ok
    assert authenticate(alice.address, PASSWORD, remote_ip=None, protocol="sieve").ok
    actions.set_require_app_passwords(alice, True)
    assert not authenticate(alice.address, PASSWORD, remote_ip=None, protocol="sieve").ok


def test_a_mail_sign_in_is_listed_and_sign_ins_older_than_the_listing_go(alice) -> None:
    old = SignIn.objects.create(account=alice, protocol="imap", method="password")
    recent = SignIn.objects.create(account=alice, protocol="pop3", method="password")
    days = datetime.timedelta(days=actions.SIGN_IN_DAYS)
    SignIn.objects.filter(pk=old.pk).update(created=timezone.now() - days - datetime.timedelta(days=1))
    SignIn.objects.filter(pk=recent.pk).update(created=timezone.now() - days + datetime.timedelta(days=1))
    _, secret = actions.create_app_password(alice, "phone", ["imap"])
    before = timezone.now()
    assert authenticate(alice.address, PASSWORD, remote_ip="192.0.2.7", protocol="imap").ok
    assert authenticate(alice.address, secret, remote_ip=None, protocol="imap").ok
    rows = list(SignIn.objects.filter(account=alice).order_by("created", "pk"))
    assert [(r.protocol, r.remote_ip, r.method) for r in rows] == [
        ("pop3", None, "password"),
        ("imap", "192.0.2.7", "password"),
        ("imap", None, "app password phone"),
    ]
    assert all(row.created >= before for row in rows[1:])
