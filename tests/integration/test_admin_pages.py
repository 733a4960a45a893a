"""Django admin renders every page an admin uses, for a staff account."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailboxes import actions
from mailboxes.models import Account, Alias, Domain, Mailbox, Message
from tests.conftest import PASSWORD

RAW = b"From: Someone <someone@remote.test>\r\nTo: alice@example.com\r\nSubject: Quarterly report\r\n\r\nBody\r\n"


@pytest.fixture
def admin_client(client, make_account):
    make_account("admin@example.com", is_staff=True, is_superuser=True)
    alice = make_account("alice@example.com", quota_bytes=10 * 1024 * 1024)
    actions.create_alias("team@example.com", ["alice@example.com"])
    actions.deliver(RAW, "someone@remote.test", [alice.address])
    assert client.login(username="admin@example.com", password=PASSWORD)
    return client


@pytest.mark.parametrize("model", [Domain, Account, Alias, Mailbox, Message])
def test_changelist_and_change_pages_render(admin_client, model) -> None:
    meta = model._meta
    response = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert response.status_code == 200
    obj = model.objects.order_by("pk").last()
    response = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200


def test_account_page_shows_usage_against_quota(admin_client) -> None:
    alice = Account.objects.get(address="alice@example.com")
    response = admin_client.get(reverse("admin:mailboxes_account_change", args=[alice.pk]))
    assert b"of 10.0\xc2\xa0MB" in response.content


def test_message_search_by_subject_sender_and_recipient(admin_client) -> None:
    url = reverse("admin:mailboxes_message_changelist")
    for query in ["Quarterly", "someone@remote.test", "alice@example.com"]:
        response = admin_client.get(url, {"q": query})
        assert b"Quarterly report" in response.content, query
    assert b"Quarterly report" not in admin_client.get(url, {"q": "nothing-like-it"}).content


def test_message_page_shows_raw_headers_read_only(admin_client) -> None:
    message = Message.objects.get()
    response = admin_client.get(reverse("admin:mailboxes_message_change", args=[message.pk]))
    assert b"Subject: Quarterly report" in response.content
    assert b'name="_save"' not in response.content


def test_add_account_creates_standard_folders_and_hashes_password(admin_client) -> None:
    response = admin_client.post(
        reverse("admin:mailboxes_account_add"),
        {"address": "new@example.com", "password": "s3cret-pass", "display_name": "New", "quota_bytes": "0"},
    )
    assert response.status_code == 302, response.content[:2000]
    account = Account.objects.get(address="new@example.com")
    assert account.password.startswith("argon2")
    assert set(account.mailboxes.values_list("role", flat=True)) == {
        "inbox",
        "sent",
        "drafts",
        "trash",
        "junk",
        "archive",
    }


def test_add_account_in_unknown_domain_is_refused(admin_client) -> None:
    response = admin_client.post(
        reverse("admin:mailboxes_account_add"), {"address": "x@nowhere.test", "password": "p", "quota_bytes": "0"}
    )
    assert response.status_code == 200
    assert b"Use a full address in one of the domains" in response.content


def test_set_password_page(admin_client) -> None:
    alice = Account.objects.get(address="alice@example.com")
    # UserAdmin names this URL "auth_user_password_change" whatever the model; it routes to the Account admin.
    url = reverse("admin:auth_user_password_change", args=[alice.pk])
    assert url.startswith("/admin/mailboxes/account/")
    response = admin_client.post(url, {"password1": "n3w-Password!", "password2": "n3w-Password!"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("n3w-Password!")


def test_non_staff_account_cannot_use_admin(client, make_account) -> None:
    make_account("plain@example.com")
    assert client.login(username="plain@example.com", password=PASSWORD)  # a valid webmail user...
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302  # ...but sent to the admin login page
    assert response["Location"].startswith(reverse("admin:login"))
