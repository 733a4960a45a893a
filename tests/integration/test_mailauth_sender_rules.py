"""Allow and block lists written through the store's actions (mailauth.sender_rules), from the admin too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailauth import sender_rules
from mailauth.models import SenderRule
from tests.conftest import PASSWORD


@pytest.fixture
def alice(make_account):
    return make_account("alice@example.com")


def rules() -> list[tuple[str, str, bool]]:
    return list(SenderRule.objects.order_by("sender").values_list("account__address", "sender", "allow"))


def test_one_entry_per_sender_moves_between_lists(alice) -> None:
    first = sender_rules.set_sender_rule(alice.pk, "Offers.Example", allow=False)
    again = sender_rules.set_sender_rule(alice.pk, "@offers.example.", allow=True)
    assert again.pk == first.pk
    assert rules() == [("alice@example.com", "offers.example", True)]


def test_removal_is_for_the_owner_only(alice, make_account) -> None:
    bob = make_account("bob@example.com")
    rule = sender_rules.set_sender_rule(alice.pk, "offers.example", allow=False)
    assert sender_rules.remove_sender_rule(bob.pk, rule.pk) is False
    assert sender_rules.remove_sender_rule(alice.pk, rule.pk) is True
    assert sender_rules.remove_sender_rule(alice.pk, rule.pk) is False
    assert rules() == []


def test_lists_are_bounded(alice, monkeypatch) -> None:
    monkeypatch.setattr(sender_rules, "MAX_RULES", 2)
    sender_rules.set_sender_rule(alice.pk, "a.example", allow=False)
    sender_rules.set_sender_rule(alice.pk, "b.example", allow=False)
    with pytest.raises(sender_rules.InvalidSender, match="at most 2 entries"):
        sender_rules.set_sender_rule(alice.pk, "c.example", allow=False)
    sender_rules.set_sender_rule(alice.pk, "a.example", allow=True)  # changing an entry is not adding one
    assert len(rules()) == 2


def test_admin_saves_and_deletes_through_the_actions(client, alice, make_account) -> None:
    make_account("admin@example.com", is_staff=True, is_superuser=True)
    assert client.login(username="admin@example.com", password=PASSWORD)
    add = reverse("admin:mailauth_senderrule_add")
    response = client.post(add, {"account": alice.pk, "sender": "Carol@Müller.example", "allow": "on"})
    assert response.status_code == 302
    assert rules() == [("alice@example.com", "carol@xn--mller-kva.example", True)]

    refused = client.post(add, {"account": alice.pk, "sender": "not a domain"})
    assert refused.status_code == 200
    assert "not a domain is not an address or a domain name." in refused.content.decode()

    rule = SenderRule.objects.get()
    change = reverse("admin:mailauth_senderrule_change", args=[rule.pk])
    assert client.post(change, {"account": alice.pk, "sender": "offers.example"}).status_code == 302
    assert rules() == [("alice@example.com", "offers.example", False)]

    rule = SenderRule.objects.get()
    delete = reverse("admin:mailauth_senderrule_delete", args=[rule.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert rules() == []
