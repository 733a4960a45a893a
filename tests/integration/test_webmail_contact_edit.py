"""Editing an address book entry: only one's own, and never into a duplicate or a non-address."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import PASSWORD
from webmail.models import Contact


def test_only_the_owner_edits_a_contact(client, make_account) -> None:
    alice = make_account("alice@example.com")
    bob = make_account("bob@example.com")
    contact = Contact.objects.create(account=alice, name="Carol", address="carol@example.org")
    assert client.login(username=bob.address, password=PASSWORD)
    url = reverse("webmail:contact_edit", args=[contact.pk])
    response = client.post(url, {"name": "Mallory", "address": "mallory@evil.test"}, follow=True)
    assert b"That contact is gone." in response.content
    contact.refresh_from_db()
    assert (contact.name, contact.address) == ("Carol", "carol@example.org")
    assert client.get(url).status_code == 405  # changes are posted, never made by following a link


def test_a_name_with_a_line_break_is_kept_on_one_line(client, make_account) -> None:
    alice = make_account("alice@example.com")
    contact = Contact.objects.create(account=alice, name="Carol", address="carol@example.org")
    assert client.login(username=alice.address, password=PASSWORD)
    client.post(
        reverse("webmail:contact_edit", args=[contact.pk]), {"name": "Carol\r\nBcc: x", "address": "carol@example.org"}
    )
    contact.refresh_from_db()
    assert "\n" not in contact.name
    assert "\r" not in contact.name
