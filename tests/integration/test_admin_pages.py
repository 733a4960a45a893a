"""Django admin renders every page an admin uses, for a staff account."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from mailboxes import actions
from mailboxes.models import Account, Alias, Domain, Mailbox, Message, Subscription
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


# --- Quotas, aliases and the permission to read others' mail (issue 19) ----------------------------------------


def _account_change_data(account: Account, **changes) -> dict:
    data = {
        "address": account.address,
        "display_name": account.display_name,
        "quota_bytes": "0",
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
    }
    return data | changes


@pytest.mark.parametrize(
    ("typed", "stored"), [("500M", 500 * 2**20), ("2.5 GB", int(2.5 * 2**30)), ("1048576", 2**20), ("0", 0)]
)
def test_quota_is_typed_in_human_units(admin_client, typed, stored) -> None:
    alice = Account.objects.get(address="alice@example.com")
    url = reverse("admin:mailboxes_account_change", args=[alice.pk])
    response = admin_client.post(url, _account_change_data(alice, quota_bytes=typed))
    assert response.status_code == 302, response.content[:3000]
    alice.refresh_from_db()
    assert alice.quota_bytes == stored


def test_message_limit_is_set_by_the_admin(admin_client) -> None:
    alice = Account.objects.get(address="alice@example.com")
    url = reverse("admin:mailboxes_account_change", args=[alice.pk])
    assert admin_client.post(url, _account_change_data(alice, quota_messages="500")).status_code == 302
    alice.refresh_from_db()
    assert alice.quota_messages == 500
    assert b"messages" in admin_client.get(url).content  # the usage line counts them
    assert (
        b"Ensure this value is greater than"
        in admin_client.post(url, _account_change_data(alice, quota_messages="-1")).content
    )
    assert admin_client.post(url, _account_change_data(alice, quota_messages="")).status_code == 302
    alice.refresh_from_db()
    assert alice.quota_messages == 0


def test_negative_or_garbled_quota_is_refused(admin_client) -> None:
    alice = Account.objects.get(address="alice@example.com")
    url = reverse("admin:mailboxes_account_change", args=[alice.pk])
    assert b'value="10M"' in admin_client.get(url).content
    response = admin_client.post(url, _account_change_data(alice, quota_bytes="-5M"))
    assert b"A quota cannot be negative" in response.content
    response = admin_client.post(url, _account_change_data(alice, quota_bytes="lots"))
    assert b"Type a size such as" in response.content
    response = admin_client.post(
        reverse("admin:mailboxes_account_add"),
        {"address": "neg@example.com", "password": "s3cret-pass", "quota_bytes": "-1"},
    )
    assert b"A quota cannot be negative" in response.content
    alice.refresh_from_db()
    assert alice.quota_bytes == 10 * 2**20
    assert not Account.objects.filter(address="neg@example.com").exists()


def test_alias_destinations_must_be_addresses_and_may_not_shadow_an_account(admin_client) -> None:
    domain = Domain.objects.get(name="example.com")
    url = reverse("admin:mailboxes_alias_add")
    base = {"domain": domain.pk, "active": "on"}
    response = admin_client.post(url, base | {"local_part": "sales", "destinations": "bob@example.org, not-an-address"})
    assert b"Not an address: not-an-address" in response.content
    response = admin_client.post(url, base | {"local_part": "Alice", "destinations": "bob@example.org"})
    assert b"alice@example.com is an account; an alias would take its mail." in response.content
    assert not Alias.objects.filter(local_part__in=["sales", "alice"]).exists()
    response = admin_client.post(
        url, base | {"local_part": "sales", "destinations": "bob@example.org\nalice@example.com"}
    )
    assert response.status_code == 302
    assert Alias.objects.get(local_part="sales").destination_list == ["bob@example.org", "alice@example.com"]


def test_reading_others_mail_needs_the_explicit_permission_and_is_logged(client, admin_client, make_account, caplog):
    from django.contrib.auth.models import Permission

    staff = make_account("helpdesk@example.com", is_staff=True)
    message = Message.objects.get()
    changelist = reverse("admin:mailboxes_message_changelist")
    page = reverse("admin:mailboxes_message_change", args=[message.pk])
    assert client.login(username=staff.address, password=PASSWORD)
    assert client.get(changelist).status_code == 403
    assert client.get(page).status_code == 403
    assert b"Quarterly report" not in client.get(reverse("admin:index")).content
    staff.user_permissions.add(Permission.objects.get(codename="view_message"))
    staff = Account.objects.get(pk=staff.pk)  # permissions are cached on the object
    with caplog.at_level("INFO", logger="mailsite.audit"):
        assert b"Quarterly report" in client.get(changelist, {"q": "Quarterly"}).content
        assert client.get(page).status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name == "mailsite.audit"] == [
        "helpdesk@example.com listed messages (search 'Quarterly')",
        f"helpdesk@example.com viewed message {message.pk} of alice@example.com",
    ]


def checkbox(page: str) -> str:
    found = re.search(r'<input[^>]*name="subscribed"[^>]*>', page)
    assert found is not None
    return found[0]


def test_folder_pages_show_and_toggle_the_subscription(admin_client) -> None:
    alice = Account.objects.get(address="alice@example.com")
    work = actions.create_mailbox(alice, "Work")
    actions.set_subscribed(alice, "Work", False)
    url = reverse("admin:mailboxes_mailbox_changelist")
    unsubscribed = admin_client.get(url, {"subscribed": "0", "q": "alice@"}).content.decode()
    assert ">Work<" in unsubscribed
    assert ">INBOX<" not in unsubscribed
    change = reverse("admin:mailboxes_mailbox_change", args=[work.pk])
    assert "checked" not in checkbox(admin_client.get(change).content.decode())
    # Renamed and subscribed in one save: the subscription is the new name's.
    assert admin_client.post(change, {"name": "Job", "subscribed": "on"}).status_code == 302
    assert set(Subscription.objects.filter(account=alice, name__in=["Work", "Job"]).values_list("name", flat=True)) == {
        "Job"
    }
    assert "checked" in checkbox(admin_client.get(change).content.decode())
    subscribed = admin_client.get(url, {"subscribed": "1", "q": "alice@"}).content.decode()
    assert ">Job<" in subscribed
    assert ">INBOX<" in subscribed
    assert admin_client.post(change, {"name": "Job"}).status_code == 302
    assert not Subscription.objects.filter(account=alice, name="Job").exists()
