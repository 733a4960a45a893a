"""The change hub hears of every folder whose messages change, from PostgreSQL itself: the trigger on a folder's
mod-sequence (migration 0025) sends the NOTIFY, at commit, for the writers that no longer send one."""

from __future__ import annotations

import psycopg
import pytest
from django.db import transaction

from mailboxes import actions
from mailboxes.actions import folders
from mailboxes.actions.flags import FlagMode
from mailboxes.models import Role
from tests.webmail_support import folder, make_raw


def _heard(conn: psycopg.Connection) -> list[str]:
    return [note.payload for note in conn.notifies(timeout=0.5)]


def test_each_writer_names_the_folders_it_changed_once(listening, make_account) -> None:
    alice = make_account("alice@example.com")
    inbox, projects = folder(alice, Role.INBOX), actions.create_mailbox(alice, "Projects")
    _heard(listening)

    actions.deliver(make_raw(to="alice@example.com"), "bob@remote.test", ["alice@example.com"])
    assert _heard(listening) == [f"{alice.pk}:{inbox.pk}"]

    appended = actions.append(alice, projects.pk, make_raw(to="alice@example.com"))
    assert _heard(listening) == [f"{alice.pk}:{projects.pk}"]

    actions.set_flags(alice, projects.pk, [appended.uid], ["\\Deleted"], FlagMode.ADD)
    assert _heard(listening) == [f"{alice.pk}:{projects.pk}"]

    assert actions.expunge(alice, projects.pk) == [appended.uid]
    assert _heard(listening) == [f"{alice.pk}:{projects.pk}"]

    actions.move(alice, inbox.pk, [1], projects.pk)
    assert sorted(_heard(listening)) == sorted([f"{alice.pk}:{inbox.pk}", f"{alice.pk}:{projects.pk}"])


def test_what_changes_no_message_is_not_announced(listening, make_account) -> None:
    alice = make_account("alice@example.com")
    inbox = folder(alice, Role.INBOX)
    actions.deliver(make_raw(to="alice@example.com"), "bob@remote.test", ["alice@example.com"])
    _heard(listening)

    assert actions.set_flags(alice, inbox.pk, [1], ["\\Seen"], FlagMode.REMOVE) == []  # not \Seen: no change
    folders.claim_recent(inbox.pk, None)  # a SELECT's \Recent claim
    assert _heard(listening) == []


def test_a_rolled_back_change_is_not_announced(listening, make_account) -> None:
    alice = make_account("alice@example.com")
    inbox = folder(alice, Role.INBOX)
    _heard(listening)

    def append_then_fail() -> None:
        with transaction.atomic():
            actions.append(alice, inbox.pk, make_raw(to="alice@example.com"))
            raise RuntimeError("the enclosing transaction fails")

    with pytest.raises(RuntimeError):
        append_then_fail()
    assert _heard(listening) == []
