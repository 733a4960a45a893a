"""Delivery of received and submitted messages into Inboxes, set-wise for groups, with DSNs for refusals."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailboxes import bulk
from mailboxes.actions import counters, direct, flights, queueing, storing
from mailboxes.actions.errors import NotFound
from mailboxes.actions.flags import set_row_flags
from mailboxes.actions.locks import action, holding, lock, taken
from mailboxes.models import Mailbox, Message, MessageBody, Role
from mailboxes.recipients import DeliveryReport, Expansion, RecipientStatus, Resolution, expansion, resolution_of
from mailcore.dsn import UNASKED, RecipientReport, Requests, build_dsn
from mailcore.mime import ParsedMessage, parse_message
from sieve.delivery import Filing, folders_to_lock

log = logging.getLogger("mail.sieve")

Delivery = tuple[bytes, str, Sequence[str]]  # raw message as received, envelope sender, envelope recipients
# Where the MX's junk verdict files a message: True for every recipient account, else the accounts in the set
# (an account with no Junk folder keeps its copy in the Inbox).
JunkFor = bool | frozenset[int]


@dataclass
class _Incoming:
    """One message of a delivery group on its way into the store."""

    stored: bytes  # the raw message with its Return-Path
    report: DeliveryReport
    resolutions: list[Resolution]
    parsed: ParsedMessage | None = None
    body: MessageBody | None = None
    columns: dict[str, Any] = field(default_factory=dict)  # of its row, for every copy (`storing.message_columns`)
    charged: list[int] = field(default_factory=list)  # accounts that got a copy
    sender: str = ""  # the envelope sender, for Sieve (sieve/delivery.py)
    junk: JunkFor = False
    refusable: bool = False  # Sieve may have the MX refuse it at DATA (sieve/delivery.py `Filing`)

    @property
    def account_ids(self) -> list[int]:
        return sorted({pk for resolution in self.resolutions for pk in resolution.account_ids})

    def into_junk(self, account_id: int) -> bool:
        return self.junk is True or (isinstance(self.junk, frozenset) and account_id in self.junk)


Expansions = dict[str, Expansion]  # what each address expanded to, looked up once per group


def _incoming(delivery: Delivery, expansions: Expansions) -> _Incoming | Exception:
    """Resolve one message's recipients (each address once per group) and parse it if anyone local gets it.

    A message the parser refuses (MimeTooDeep, HeaderTooLarge) or fails on is returned as the exception: it
    alone is refused, before anything of the group is written.
    """
    raw, envelope_sender, recipients = delivery
    stored = storing.with_return_path(raw, envelope_sender)
    item = _Incoming(stored, DeliveryReport(), [], sender=envelope_sender)
    for rcpt in recipients:
        if rcpt not in expansions:
            expansions[rcpt] = expansion(rcpt)
        resolution = resolution_of(rcpt, expansions[rcpt], len(stored))
        item.resolutions.append(resolution)
        item.report.results[rcpt] = resolution.status
        item.report.forward.extend(a for a in resolution.external if a not in item.report.forward)
    if item.account_ids:
        try:
            item.parsed = parse_message(stored)
        except Exception as exc:
            return exc
    return item


@dataclass(frozen=True)
class _Copy:
    """One copy of a message for one account: into a folder, or its Inbox (None)."""

    item: _Incoming
    account_id: int
    folder_id: int | None
    flags: tuple[str, ...] = ()


def _store(items: Sequence[_Incoming]) -> None:
    """Store each message once and a copy for each of its accounts, charging quota; fills in the reports.

    Threads are looked up first, and Sieve decides (sieve/delivery.py `Filing`), holding no lock another delivery
    waits for. Each copy then has its folder: the Inbox, the account's Junk folder for the junk verdict, or those
    the scripts filed it into. Then, in the store's lock order, the folders and the accounts (one statement each,
    or none for one folder of one account: see below), the UIDs of every folder reserved in one statement and the
    accounts charged in another, and one statement for the bodies and every copy (`bulk.insert_linked`). A copy
    whose account has no room left is not stored (its UID stays unused: UIDs must ascend, they need not be
    dense), nor is a body no copy needs.
    """
    for item in items:  # written with its copies, at the end: a body no copy needs is never stored
        assert item.parsed is not None
        item.body = MessageBody(raw=item.stored, size=len(item.stored))
        item.columns = storing.message_columns(item.parsed, item.body)
    by_account: dict[int, list[_Incoming]] = {}
    for item in items:
        for account_id in item.account_ids:
            by_account.setdefault(account_id, []).append(item)
    # Sieve: the accounts' scripts take messages out of the Inbox path, flag them, file them elsewhere.
    filing = Filing(items, by_account)
    junk_folders = _junk_folders(items)
    copies = [
        _Copy(
            item,
            account_id,
            junk_folders.get(account_id) if item.into_junk(account_id) else None,
            filing.inbox_flags(item, account_id),
        )
        for account_id, group in sorted(by_account.items())
        for item in group
    ]
    copies += [_Copy(item, account_id, folder_id, flags) for item, account_id, folder_id, flags in filing.copies]
    threads = _threads(copies)
    accounts = {copy.account_id for copy in copies} | filing.accounts
    inbox_of = sorted({copy.account_id for copy in copies if copy.folder_id is None})
    folders = {copy.folder_id for copy in copies if copy.folder_id is not None}
    sizes: dict[int, list[int]] = {}
    for copy in copies:
        sizes.setdefault(copy.account_id, []).append(len(copy.item.stored))
    # One folder of one account (the MX's common case): one statement reserves the UIDs and charges the quota,
    # locking the folder and then the account (the store's order), so only the lock helper's record is needed,
    # not two statements more. (An action that locked up front holds them already: `lock()` then costs nothing.)
    single = not holding() and len(accounts) == 1 and len(inbox_of) + len(folders) == 1 and not filing.reached
    inboxes: dict[int, int] = {}
    if single:
        [(account_id, each)] = sizes.items()
        [named] = folders or [None]
        added = counters.flagged_all((len(copy.item.stored), copy.flags) for copy in copies)
        folder_id, first_uid, modseq, fitted = counters.reserve(account_id, each, named, added)
        if inbox_of:
            inboxes = {account_id: folder_id}
        uids, fits = {folder_id: (first_uid, modseq)}, {account_id: iter(fitted)}
        taken(folder=folder_id, account=account_id)
    else:
        locked = lock(
            folders=(folders | filing.reached_folders) - filing.created,
            inboxes_of=[*inbox_of, *filing.reached],
            accounts=accounts,
        )
        inboxes = locked.inboxes
        if any(account_id not in inboxes for account_id in inbox_of):
            raise NotFound("an account has no Inbox")
        counts = counters.tallies(
            (copy.folder_id or inboxes[copy.account_id], len(copy.item.stored), copy.flags) for copy in copies
        )
        uids = counters.allocate_delivery_uids(counts) if counts else {}
        charged = counters.charge_quota_many(sizes) if sizes else {}
        fits = {account_id: iter(each) for account_id, each in charged.items()}
    rows: list[tuple[_Incoming, Message]] = []
    unstored: list[tuple[int, int, tuple[str, ...]]] = []  # counted in their folders by the UPDATE above
    next_uid = {folder_id: first_uid for folder_id, (first_uid, _) in uids.items()}
    for copy in copies:
        folder_id = copy.folder_id or inboxes[copy.account_id]
        uid, next_uid[folder_id] = next_uid[folder_id], next_uid[folder_id] + 1
        if not next(fits[copy.account_id]):
            if copy.account_id in copy.item.charged:  # delivered as far as the sender is told: say it here
                log.warning("sieve: no room for a copy in folder %s of account %s", folder_id, copy.account_id)
            unstored.append((folder_id, len(copy.item.stored), copy.flags))
            continue
        if copy.account_id not in copy.item.charged:
            copy.item.charged.append(copy.account_id)
        assert copy.item.body is not None
        row = storing.message_row(
            copy.item.columns,
            account_id=copy.account_id,
            mailbox_id=folder_id,
            uid=uid,
            modseq=uids[folder_id][1],
            body=copy.item.body,
            thread_id=threads[copy.account_id, id(copy.item)],
        )
        if copy.flags:
            set_row_flags(row, copy.flags)
        rows.append((copy.item, row))
    if unstored:
        counters.uncount(counters.tallies(unstored))
    if rows:
        bodies = list({id(message.body): message.body for _, message in rows}.values())
        bulk.insert_linked(bodies, [message for _, message in rows], "body")
    for item, message in rows:
        item.report.message_ids.append(message.pk)
    filing.send()
    for item in items:
        _report_full(item)


def _threads(copies: Sequence[_Copy]) -> dict[tuple[int, int], uuid.UUID]:
    """The conversation each message joins in each account it has copies in (every copy of a message in one
    account is in the same one): (account id, id of the item) -> thread."""
    by_account: dict[int, dict[int, _Incoming]] = {}
    for copy in copies:
        by_account.setdefault(copy.account_id, {})[id(copy.item)] = copy.item
    found = storing.threads(
        {
            account_id: [item.parsed for item in group.values() if item.parsed is not None]
            for account_id, group in by_account.items()
        }
    )
    return {
        (account_id, key): thread
        for account_id, group in by_account.items()
        for key, thread in zip(group, found[account_id], strict=True)
    }


def _junk_folders(items: Sequence[_Incoming]) -> dict[int, int]:
    """The Junk folder of each account that one of `items` is filed into Junk for."""
    wanted = {account_id for item in items for account_id in item.account_ids if item.into_junk(account_id)}
    if not wanted:
        return {}
    return dict(Mailbox.objects.filter(account_id__in=wanted, role=Role.JUNK).values_list("account_id", "pk"))


def _report_full(item: _Incoming) -> None:
    """Recipients all of whose accounts filled up between RCPT and DATA are refused, not silently dropped."""
    for resolution in item.resolutions:
        accounts = set(resolution.account_ids)
        if accounts and not accounts & set(item.charged) and not resolution.external:
            item.report.results[resolution.address] = RecipientStatus.OVER_QUOTA


def _deliver_group(
    deliveries: Sequence[Delivery], expansions: Expansions, junk: Sequence[JunkFor] = (), *, refusable: bool = False
) -> list[DeliveryReport | Exception]:
    incoming = [_incoming(delivery, expansions) for delivery in deliveries]
    for item, junk_for in zip(incoming, junk, strict=False):
        if isinstance(item, _Incoming):
            item.junk = junk_for
    for item in incoming:
        if isinstance(item, _Incoming):
            item.refusable = refusable
    storing_now = [item for item in incoming if isinstance(item, _Incoming) and item.account_ids]
    if storing_now:
        _store(storing_now)
    return [item if isinstance(item, Exception) else item.report for item in incoming]


def _known(resolved: Mapping[str, Resolution] | None) -> Expansions:
    return {
        address: resolution.expansion
        for address, resolution in (resolved or {}).items()
        if resolution.expansion is not None
    }


def lock_up_front(
    deliveries: Sequence[Delivery],
    expansions: Expansions,
    *,
    folders: Sequence[int] = (),
    accounts: Sequence[int] = (),
    senders: bool = True,
) -> None:
    """Look up every recipient, and every sender who may get a DSN back, and lock all the Inboxes and accounts
    they reach (with `folders`) before anything is written: for actions that deliver more than once in one
    transaction (a DSN after a delivery, a Sent copy after a send, a group in savepoints)."""
    reached: set[int] = set()
    filtered: set[int] = set()
    for _, envelope_sender, recipients in deliveries:
        addresses = [*recipients, envelope_sender] if senders and envelope_sender else recipients
        for address in addresses:
            if address not in expansions:
                expansions[address] = expansion(address)
            reached.update(expansions[address].accounts)
            filtered |= expansions[address].filtered
    # Sieve may file into any folder of an account with a script: those are locked too, in order.
    lock(folders=[*folders, *folders_to_lock(filtered)], inboxes_of=reached, accounts=reached | set(accounts))


# Within a caller's transaction no savepoint of its own: an error rolls back to the caller's.
@action(savepoint=False)
def deliver(raw: bytes, envelope_sender: str, recipients: Sequence[str]) -> DeliveryReport:
    """Store one received message for its local recipients, in one transaction.

    `raw` is the message as received (with the SMTP layer's Received header); a Return-Path header is added.
    One body is stored and shared by every local account reached (duplicates after alias expansion are
    stored once). Recipients outside our domains are reported REMOTE and left to the caller (the outbound
    queue); external addresses reached through aliases are listed in `forward`.

    Raises mailcore.mime.MimeTooDeep / HeaderTooLarge for structurally hostile mail (nothing is stored).
    """
    [result] = _deliver_group([(raw, envelope_sender, recipients)], {})
    if isinstance(result, Exception):
        raise result
    return result


def submit_in(
    raw: bytes,
    envelope_sender: str,
    recipients: Sequence[str],
    expansions: Expansions,
    author_domain: str | None,
    requests: Requests = UNASKED,
) -> DeliveryReport:
    [report] = _deliver_group([(raw, envelope_sender, recipients)], expansions)
    if isinstance(report, Exception):
        raise report
    queueing.pass_on(raw, envelope_sender, report, relay_remote=True, author_domain=author_domain, requests=requests)
    return report


@action
def submit(
    raw: bytes, envelope_sender: str, recipients: Sequence[str], *, author_domain: str | None = None
) -> DeliveryReport:
    """Send a local user's message: local recipients get it now; remote recipients and external alias
    destinations go to the outbound queue, all in one transaction. Recipients reported REMOTE were queued;
    delivery attempts start when the transaction commits. `author_domain` is the domain the submission
    authorised the author for (see `mailboxes.authors`); the relay signs for it and for nothing else."""
    expansions: Expansions = {}
    lock_up_front([(raw, envelope_sender, recipients)], expansions, senders=False)
    return submit_in(raw, envelope_sender, recipients, expansions, author_domain)


@action
def submit_from_smtp(
    raw: bytes,
    envelope_sender: str,
    recipients: Sequence[str],
    *,
    author_domain: str | None = None,
    requests: Requests = UNASKED,
) -> DeliveryReport:
    """`submit` for SMTP submission, which has one DATA reply for all recipients: a local recipient whose
    mailbox filled up (or who was removed) after RCPT gets no copy, and the sender a DSN saying so, as on the
    MX. `requests` are the envelope's DSN and REQUIRETLS parameters: the queue keeps them for the relay, and a
    local recipient with NOTIFY=SUCCESS gets the sender a "delivered" notice (RFC 3461 4.1)."""
    expansions: Expansions = {}
    lock_up_front([(raw, envelope_sender, recipients)], expansions)
    report = submit_in(raw, envelope_sender, recipients, expansions, author_domain, requests)
    _bounce_refused(raw, envelope_sender, report, relayed=True, requests=requests)
    return report


def deliver_many(
    deliveries: Sequence[Delivery],
    resolved: Mapping[str, Resolution] | None = None,
    junk: Sequence[JunkFor] = (),
    requests: Sequence[Requests] = (),
) -> list[DeliveryReport | Exception]:
    """Messages received by the MX, stored in one transaction: one commit (one WAL flush) for a group of
    messages, and the group's rows written set-wise (see `_store`). Each message's alias forwards are queued
    for the relay in the same transaction (see `_pass_on`).

    `resolved` holds recent `resolve_recipient` answers (SMTP's RCPT replies), used instead of looking those
    addresses up again. What changed since is still caught: a full mailbox by the quota charge, a removed or
    disabled account (or domain) by the Inbox lock, which then fails.

    A message the parser refuses is returned as its exception, and the rest of the group is stored. If
    anything else raises (a DSN for a local sender whose Inbox the group did not lock included), the group is
    redone by `_deliver_each`. An error that breaks the transaction itself (a lost connection) propagates and
    nothing is stored.

    `junk` gives each message the MX's junk verdict (see `JunkFor`); a message without one goes to Inboxes.

    `requests` gives each message its sender's DSN and REQUIRETLS parameters (RFC 3461, RFC 8689): NOTIFY decides
    the notices about its local recipients, and its alias forwards are queued with RET, ENVID and REQUIRETLS. A
    message without them gets today's defaults.

    A message the recipients' Sieve scripts reject for all of them is stored for no one and sends no notice: its
    report's `refused` holds the reason for the MX's DATA reply (sieve/delivery.py `Filing`).
    """
    asked = [*requests, *[UNASKED] * (len(deliveries) - len(requests))]
    if len(deliveries) == 1 and flights.usable():
        alone = _direct_resolution(deliveries[0], resolved or {}, junk[0] if junk else False, asked[0])
        stored = None if alone is None else direct.deliver(deliveries[0][0], deliveries[0][1], alone)
        if stored is not None:
            return [stored]
    try:
        return _deliver_together(deliveries, _known(resolved), junk, asked)
    except Exception:
        return _deliver_each(deliveries, junk, asked)


def _direct_resolution(
    delivery: Delivery, resolved: Mapping[str, Resolution], junk: JunkFor, requests: Requests
) -> Resolution | None:
    """The RCPT answer of a delivery that `direct.deliver` may store: one recipient reaching one account, which
    runs no Sieve script and has room, with no alias forward, no junk verdict and no notice of success asked."""
    _, _, recipients = delivery
    if len(recipients) != 1 or junk:
        return None
    [rcpt] = recipients
    resolution = resolved.get(rcpt)
    if resolution is None or resolution.expansion is None or resolution.status is not RecipientStatus.LOCAL:
        return None
    if len(resolution.account_ids) != 1 or len(resolution.expansion.accounts) != 1 or resolution.external:
        return None
    if resolution.expansion.filtered or requests.notifies(rcpt, "SUCCESS"):
        return None
    return resolution


@action
def _deliver_together(
    deliveries: Sequence[Delivery], expansions: Expansions, junk: Sequence[JunkFor], requests: Sequence[Requests]
) -> list[DeliveryReport | Exception]:
    results = _deliver_group(deliveries, expansions, junk, refusable=True)
    for delivery, result, asked in zip(deliveries, results, requests, strict=True):
        if isinstance(result, DeliveryReport):
            _pass_on(delivery, result, asked)
    return results


@action
def _deliver_each(
    deliveries: Sequence[Delivery], junk: Sequence[JunkFor], requests: Sequence[Requests]
) -> list[DeliveryReport | Exception]:
    """The group again, its addresses looked up afresh and every lock it may need taken first (senders' too,
    for DSNs), then each message in its own savepoint: the one that fails is rolled back alone and returned as
    its exception, the others commit together. Savepoints cost two statements per message, so they are only
    paid for when something went wrong."""
    results: list[DeliveryReport | Exception] = []
    expansions: Expansions = {}
    lock_up_front(deliveries, expansions)
    for index, delivery in enumerate(deliveries):
        try:
            with transaction.atomic():  # this delivery's savepoint
                [result] = _deliver_group([delivery], expansions, junk[index : index + 1], refusable=True)
                if isinstance(result, DeliveryReport):
                    _pass_on(delivery, result, requests[index])
        except Exception as exc:  # rolled back to the savepoint; the rest go on
            result = exc
        results.append(result)
    return results


def _pass_on(delivery: Delivery, report: DeliveryReport, requests: Requests) -> None:
    """After a received message is stored: queue its alias forwards for the relay, with the original envelope
    sender (no SRS rewriting, and no DKIM signature: we are not its author) and its RET, ENVID and REQUIRETLS
    (a forward has another address than the RCPT's, so NOTIFY and ORCPT stay with the RCPT: defaults apply),
    and tell the sender about recipients refused at DATA."""
    raw, envelope_sender, _ = delivery
    forwarded = Requests(ret=requests.ret, envid=requests.envid, require_tls=requests.require_tls)
    queueing.pass_on(raw, envelope_sender, report, relay_remote=False, author_domain=None, requests=forwarded)
    _bounce_refused(raw, envelope_sender, report, relayed=False, requests=requests)


# Why a recipient accepted at RCPT got no copy at DATA: (RFC 3463 status, text for the DSN).
_REFUSED_AT_DATA = {
    RecipientStatus.OVER_QUOTA: ("5.2.2", "mailbox full"),
    RecipientStatus.UNKNOWN: ("5.1.1", "no such mailbox here any more"),
    RecipientStatus.REMOTE: ("5.1.2", "the domain no longer receives mail here"),
}


def _bounce_refused(
    raw: bytes, envelope_sender: str, report: DeliveryReport, *, relayed: bool, requests: Requests = UNASKED
) -> None:
    """Recipients accepted at RCPT that got no copy at DATA, when others did: a mailbox filled up, or an
    account or domain was removed in between (REMOTE counts so only on the MX; on submission, `relayed`, it
    was queued for the relay).

    SMTP has one DATA reply for all recipients: it is 250 for those stored, so the sender learns about the
    others from a DSN (RFC 3464), delivered in the same transaction. When none got it the reply itself says so
    and no DSN is sent; never for a bounce (null sender). The same DSN tells of the local recipients whose
    NOTIFY asked for SUCCESS, and leaves out those whose NOTIFY leaves out FAILURE (RFC 3461 4.1).
    """
    statuses = set(report.results.values())
    refused = {
        rcpt: _REFUSED_AT_DATA[status]
        for rcpt, status in report.results.items()
        if status in _REFUSED_AT_DATA
        and not (relayed and status is RecipientStatus.REMOTE)
        and requests.notifies(rcpt, "FAILURE")
    }
    delivered = RecipientStatus.LOCAL in statuses or (relayed and RecipientStatus.REMOTE in statuses)
    now = timezone.now()
    reports = [
        RecipientReport(
            rcpt,
            "failed",
            status,
            text,
            smtp_reply=False,
            last_attempt=now,
            original_recipient=requests.orcpt.get(rcpt, ""),
        )
        for rcpt, (status, text) in refused.items()
        if delivered
    ]
    reports += [
        RecipientReport(
            rcpt,
            "delivered",
            "2.0.0",
            "delivered to the mailbox",
            smtp_reply=False,
            last_attempt=now,
            original_recipient=requests.orcpt.get(rcpt, ""),
        )
        for rcpt, status in report.results.items()
        if status is RecipientStatus.LOCAL and requests.notifies(rcpt, "SUCCESS")
    ]
    if not reports or not envelope_sender:
        return
    dsn = build_dsn(
        reporting_mta=settings.MAILSITE_HOSTNAME,
        to=envelope_sender,
        original=raw,
        recipients=reports,
        arrival=now,
        now=now,
        ret="HDRS" if requests.require_tls else requests.ret,  # RFC 8689 5: never the content of such mail
        envid=requests.envid,
    )
    if deliver(dsn, "", [envelope_sender]).results.get(envelope_sender) is RecipientStatus.REMOTE:
        queueing.enqueue(
            dsn, "", [envelope_sender], author_domain=None, requests=Requests(require_tls=requests.require_tls)
        )
