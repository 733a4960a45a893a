"""QUOTA (RFC 9208): one quota root, "", per account, holding every folder, with the STORAGE resource in
units of 1024 octets and the MESSAGE resource (RFC 9208 5.2), each from the account's limit and usage. An
account without a limit has no quota root; a resource without a limit is not listed."""

from __future__ import annotations

from imapd import store
from imapd.commands.args import count, mailbox, wire_name
from imapd.protocol import Command, astring
from imapd.session import No, Session
from mailboxes import asyncdb
from mailcore.imap_wire import string

ROOT = ""


def quota_response(usage: store.Usage) -> bytes:
    """RFC 9208 5.1: "* QUOTA root (resource usage limit ...)"; storage usage rounded up and its limit down to
    whole KiB."""
    resources = []
    if usage.quota_bytes:
        resources.append(b"STORAGE %d %d" % (-(-usage.used_bytes // 1024), usage.quota_bytes // 1024))
    if usage.quota_messages:
        resources.append(b"MESSAGE %d %d" % (usage.used_messages, usage.quota_messages))
    return b'* QUOTA "" (%s)\r\n' % b" ".join(resources)


def _limited(usage: store.Usage) -> bool:
    return bool(usage.quota_bytes or usage.quota_messages)


async def getquotaroot(session: Session, command: Command) -> str:
    (token,) = count(command, 1)
    name = mailbox(token, session.utf8)
    assert session.account is not None
    usage = await asyncdb.call(store.quota, session.account.pk, name)
    if usage is None:
        raise No("[NONEXISTENT] No such folder")
    # RFC 9208 4.3.2: QUOTAROOT names the folder and its roots, then a QUOTA response for each root.
    if _limited(usage):
        session.send(b'* QUOTAROOT %s ""\r\n' % string(wire_name(name, session.utf8)))
        session.send(quota_response(usage))
    else:
        session.send(b"* QUOTAROOT %s\r\n" % string(wire_name(name, session.utf8)))
    return "GETQUOTAROOT completed"


async def getquota(session: Session, command: Command) -> str:
    (token,) = count(command, 1)
    assert session.account is not None
    usage = await asyncdb.call(store.quota, session.account.pk, "INBOX")
    if astring(token) != ROOT or usage is None or not _limited(usage):
        raise No("[NONEXISTENT] No such quota root")
    session.send(quota_response(usage))
    return "GETQUOTA completed"


async def setquota(session: Session, command: Command) -> str:
    # RFC 9208 4.1.3: only with the QUOTASET capability, which is not offered: quotas are the admin's.
    raise No("[NOPERM] Quotas are set by the administrator")


HANDLERS = {"GETQUOTAROOT": getquotaroot, "GETQUOTA": getquota, "SETQUOTA": setquota}
