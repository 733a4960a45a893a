"""QUOTA (RFC 9208): one quota root, "", per account, holding every folder, with the STORAGE resource in
units of 1024 octets from the account's quota and usage. An account without a limit has no quota root."""

from __future__ import annotations

from imapd import store
from imapd.commands.args import count, mailbox, wire_name
from imapd.protocol import Command, astring
from imapd.session import No, Session
from mailboxes import asyncdb
from mailcore.imap_wire import string

ROOT = ""


def quota_response(used_bytes: int, limit_bytes: int) -> bytes:
    """RFC 9208 5.1: "* QUOTA root (STORAGE usage limit)", usage rounded up and limit down to whole KiB."""
    used = -(-used_bytes // 1024)
    return b'* QUOTA "" (STORAGE %d %d)\r\n' % (used, limit_bytes // 1024)


async def getquotaroot(session: Session, command: Command) -> str:
    (token,) = count(command, 1)
    name = mailbox(token, session.utf8)
    assert session.account is not None
    usage = await asyncdb.call(store.quota, session.account.pk, name)
    if usage is None:
        raise No("[NONEXISTENT] No such folder")
    used, limit = usage
    # RFC 9208 4.3.2: QUOTAROOT names the folder and its roots, then a QUOTA response for each root.
    if limit:
        session.send(b'* QUOTAROOT %s ""\r\n' % string(wire_name(name, session.utf8)))
        session.send(quota_response(used, limit))
    else:
        session.send(b"* QUOTAROOT %s\r\n" % string(wire_name(name, session.utf8)))
    return "GETQUOTAROOT completed"


async def getquota(session: Session, command: Command) -> str:
    (token,) = count(command, 1)
    assert session.account is not None
    usage = await asyncdb.call(store.quota, session.account.pk, "INBOX")
    if astring(token) != ROOT or usage is None or not usage[1]:
        raise No("[NONEXISTENT] No such quota root")
    session.send(quota_response(*usage))
    return "GETQUOTA completed"


async def setquota(session: Session, command: Command) -> str:
    # RFC 9208 4.1.3: only with the QUOTASET capability, which is not offered: quotas are the admin's.
    raise No("[NOPERM] Quotas are set by the administrator")


HANDLERS = {"GETQUOTAROOT": getquotaroot, "GETQUOTA": getquota, "SETQUOTA": setquota}
