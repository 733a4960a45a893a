"""The relay announces each recorded attempt on the change hub, so the sender's open pages update at once."""

from __future__ import annotations

import psycopg

from mailboxes.actions import outbound, queueing
from mailboxes.models import Role
from relay.deliver import Reply
from tests.webmail_support import folder, make_raw


def _heard(conn: psycopg.Connection) -> set[str]:
    return {note.payload for note in conn.notifies(timeout=1)}


def test_a_recorded_attempt_names_the_senders_sent_folder(listening, make_account) -> None:
    alice = make_account("alice@example.com")
    raw = make_raw(to="carol@remote.test", sender="alice@example.com")
    queued = queueing.enqueue(raw, alice.address, ["carol@remote.test"], author_domain=None)
    assert queued is not None
    _heard(listening)
    claimed = outbound.claim(queued.pk, "remote.test")
    assert claimed is not None
    outbound.record(claimed, {"carol@remote.test": Reply(451, "4.7.1 Try later", "mx.remote.test")})
    assert f"{alice.pk}:{folder(alice, Role.SENT).pk}" in _heard(listening)


def test_mail_from_elsewhere_announces_nothing(listening, make_account) -> None:
    make_account("alice@example.com")
    queued = queueing.enqueue(
        make_raw(to="carol@remote.test"), "bob@remote.test", ["carol@remote.test"], author_domain=None
    )
    assert queued is not None
    _heard(listening)
    claimed = outbound.claim(queued.pk, "remote.test")
    assert claimed is not None
    outbound.record(claimed, {"carol@remote.test": Reply(250, "2.0.0 Ok", "mx.remote.test")})
    assert _heard(listening) == set()
