"""The webmail's filter pages and the admin's Sieve pages, through Django's test client."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sieve import rules, scripts
from sieve.models import BeforeScript, SieveScript
from tests.conftest import PASSWORD


@pytest.fixture
def alice(make_account):
    return make_account("alice@example.com")


@pytest.fixture
def signed_in(client, alice):
    response = client.post(reverse("webmail:login"), {"address": alice.address, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_rule_added_and_deleted(signed_in, alice):
    assert b"No rules yet." in signed_in.get(reverse("webmail:filters")).content
    response = signed_in.post(
        reverse("webmail:filter_add"),
        {"field": "subject", "operator": "contains", "value": "invoice", "action": "move", "target": "Bills"},
        follow=True,
    )
    assert b"Rule added." in response.content
    stored = SieveScript.objects.get(account=alice)
    assert (stored.name, stored.active) == (rules.SCRIPT_NAME, True)
    assert 'if header :contains "subject" "invoice" {\r\n  fileinto :create "Bills";\r\n}' in stored.content
    assert "Bills" in signed_in.get(reverse("webmail:filters")).content.decode()
    signed_in.post(reverse("webmail:filter_delete", args=[0]))
    assert rules.settings_of(SieveScript.objects.get(account=alice).content).rules == []


def test_invalid_rule_is_refused(signed_in, alice):
    response = signed_in.post(
        reverse("webmail:filter_add"),
        {"field": "size", "operator": "contains", "value": "huge", "action": "discard"},
        follow=True,
    )
    assert b"the size is a whole number of kilobytes" in response.content
    assert not SieveScript.objects.exists()


def test_vacation_page(signed_in, alice):
    response = signed_in.post(
        reverse("webmail:vacation"),
        {"enabled": "on", "subject": "Away", "message": "Back in January.", "end": "2027-01-05", "days": 5},
        follow=True,
    )
    assert b"Vacation reply saved." in response.content
    content = SieveScript.objects.get(account=alice).content
    assert 'vacation :days 5 :subject "Away" "Back in January.";' in content
    assert 'currentdate :value "le" "date" "2027-01-05"' in content
    page = signed_in.get(reverse("webmail:vacation")).content.decode()
    assert "Back in January." in page


def test_raw_editor_shows_errors_with_line_and_column_and_keeps_the_text(signed_in, alice):
    bad = 'keep;\r\nfileinto "Archive";\r\n'
    response = signed_in.post(reverse("webmail:filter_script"), {"content": bad})
    assert response.status_code == 200
    assert "line 2, column 1: fileinto needs require" in response.content.decode().replace("&quot;", '"')
    assert "fileinto &quot;Archive&quot;;" in response.content.decode()
    assert not SieveScript.objects.exists()
    good = 'require "fileinto";\r\nfileinto "Archive";\r\n'
    signed_in.post(reverse("webmail:filter_script"), {"content": good})
    assert scripts.active_script(alice).content == good
    # A hand-written script is not overwritten by the rules editor.
    assert b"edited by hand" in signed_in.get(reverse("webmail:filters")).content


def test_pages_need_sign_in(client):
    assert client.get(reverse("webmail:filters")).status_code == 302


@pytest.fixture
def admin_client(client, make_account):
    make_account("admin@example.com", is_staff=True, is_superuser=True)
    assert client.login(username="admin@example.com", password=PASSWORD)
    return client


def test_admin_sees_and_disables_a_script(admin_client, make_account):
    bob = make_account("bob@example.com")
    scripts.put_script(bob, "rules", "discard;", activate=True)
    script = SieveScript.objects.get()
    url = reverse("admin:sieve_sievescript_changelist")
    assert b"bob@example.com" in admin_client.get(url).content
    assert b"discard;" in admin_client.get(reverse("admin:sieve_sievescript_change", args=[script.pk])).content
    admin_client.post(url, {"action": "disable", "_selected_action": [script.pk]})
    script.refresh_from_db()
    assert script.active is False
    assert script.content == "discard;"


def test_admin_before_script_is_validated(admin_client):
    url = reverse("admin:sieve_beforescript_add")
    response = admin_client.post(url, {"name": "junk", "content": 'fileinto "Junk";', "enabled": "on"})
    assert b"fileinto needs require" in response.content
    assert not BeforeScript.objects.exists()
    admin_client.post(url, {"name": "junk", "content": 'require "fileinto"; fileinto "Junk";', "enabled": "on"})
    assert BeforeScript.objects.get().name == "junk"
