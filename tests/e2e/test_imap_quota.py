"""QUOTA (RFC 9208) over a real imapd, from the account's limits and the bytes and messages it holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailboxes import actions
from mailboxes.models import Account
from tests.imap_support import RawClient, Server, deliver, message, start


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def test_quota_of_an_account_with_a_limit(server: Server, make_account) -> None:
    make_account("quota@example.test", quota_bytes=100 * 1024)
    deliver(message("one", "x" * 3000 + "\r\n"), "quota@example.test")
    used = Account.objects.get(address="quota@example.test").used_bytes
    assert used > 3000
    client = RawClient(server, address="quota@example.test")
    assert "QUOTA=RES-STORAGE" in client.ok("CAPABILITY").decode()
    # RFC 9208 4.3.2's example shape: QUOTAROOT, then QUOTA for the root.
    data = client.ok("GETQUOTAROOT INBOX")
    kib = -(-used // 1024)
    assert b'* QUOTAROOT "INBOX" ""\r\n* QUOTA "" (STORAGE %d 100)\r\n' % kib in data
    assert b'* QUOTA "" (STORAGE %d 100)\r\n' % kib in client.ok('GETQUOTA ""')
    assert b" NO [NONEXISTENT]" in client.command("GETQUOTA other")
    assert b" NO [NONEXISTENT]" in client.command("GETQUOTAROOT Nowhere")
    assert b" NO [NOPERM]" in client.command('SETQUOTA "" (STORAGE 512)')
    client.ok("SELECT INBOX")
    client.ok("STORE 1 +FLAGS (\\Deleted)")
    assert b"(DELETED-STORAGE %d)" % kib in client.ok("STATUS INBOX (DELETED-STORAGE)")


def test_an_account_without_a_limit_has_no_quota_root(server: Server) -> None:
    client = RawClient(server)
    assert b'* QUOTAROOT "INBOX"\r\n' in client.ok("GETQUOTAROOT INBOX")
    assert b" NO [NONEXISTENT]" in client.command('GETQUOTA ""')


def test_message_resource(server: Server, make_account) -> None:
    account = make_account("counted@example.test")
    actions.update_account(account, quota_messages=3)
    deliver(message("one"), "counted@example.test")
    client = RawClient(server, address="counted@example.test")
    assert "QUOTA=RES-MESSAGE" in client.ok("CAPABILITY").decode()
    # RFC 9208 5.2: MESSAGE counts the messages of every folder under the root; no STORAGE without its limit.
    assert b'* QUOTAROOT "INBOX" ""\r\n* QUOTA "" (MESSAGE 1 3)\r\n' in client.ok("GETQUOTAROOT INBOX")
    client.ok("SELECT INBOX")
    client.ok("COPY 1 Archive")
    raw = message("two")
    client.ok(b"APPEND Sent {%d+}\r\n%s" % (len(raw), raw))
    assert b'* QUOTA "" (MESSAGE 3 3)\r\n' in client.ok('GETQUOTA ""')
    # Full: APPEND and COPY are refused as for the storage quota (RFC 9208 4.5: [OVERQUOTA]), nothing stored.
    assert b" NO [OVERQUOTA] " in client.command(b"APPEND INBOX {%d+}\r\n%s" % (len(raw), raw))
    assert b" NO [OVERQUOTA] " in client.command("COPY 1 Archive")
    client.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    client.ok("EXPUNGE")
    assert b'* QUOTA "" (MESSAGE 2 3)\r\n' in client.ok('GETQUOTA ""')
    actions.update_account(account, quota_bytes=1024 * 1024)
    assert b"(STORAGE 1 1024 MESSAGE 2 3)" in client.ok('GETQUOTA ""')
