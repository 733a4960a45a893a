"""An action given a folder id of another account refuses it (NotFound) and changes nothing: the id comes from a
client (an IMAP session's selected folder, a webmail form), so the lock statement checks it belongs to the
account acting."""

from __future__ import annotations

import pytest

from mailboxes import actions
from mailboxes.actions.errors import NotFound
from mailboxes.models import Message, Role
from tests.webmail_support import folder, make_raw


@pytest.fixture
def two_tenants(make_account):
    alice, bob = make_account("alice@example.com"), make_account("bob@example.org")
    for account in (alice, bob):
        actions.deliver(make_raw(to=account.address), "carol@remote.test", [account.address])
        actions.set_flags(account, folder(account, Role.INBOX).pk, [1], ["\\Deleted"], actions.FlagMode.ADD)
    return alice, bob


def _state() -> list[tuple]:
    return list(Message.objects.order_by("id").values_list("id", "mailbox_id", "uid", "modseq", "seen", "deleted"))


@pytest.mark.parametrize(
    "attempt",
    [
        lambda alice, theirs, mine: actions.set_flags(alice, theirs, [1], ["\\Seen"], actions.FlagMode.ADD),
        lambda alice, theirs, mine: actions.store_flags(alice, theirs, [(1, 1)], 1, ["\\Seen"], actions.FlagMode.ADD),
        lambda alice, theirs, mine: actions.expunge(alice, theirs),
        lambda alice, theirs, mine: actions.delete_messages(alice, theirs, [1]),
        lambda alice, theirs, mine: actions.move(alice, theirs, [1], mine),
        lambda alice, theirs, mine: actions.move(alice, mine, [1], theirs),
        lambda alice, theirs, mine: actions.copy(alice, theirs, [1], mine),
        lambda alice, theirs, mine: actions.copy(alice, mine, [1], theirs),
        lambda alice, theirs, mine: actions.append(alice, theirs, make_raw(to="bob@example.org")),
    ],
    ids=["store", "store-selection", "expunge", "delete", "move-from", "move-into", "copy-from", "copy-into", "append"],
)
def test_another_accounts_folder_is_not_found(two_tenants, attempt) -> None:
    alice, bob = two_tenants
    before = _state()
    with pytest.raises(NotFound):
        attempt(alice, folder(bob, Role.INBOX).pk, folder(alice, Role.INBOX).pk)
    assert _state() == before
