"""Delivery of received and submitted messages into Inboxes, set-wise for groups, with DSNs for refusals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailboxes import bulk, changes
from mailboxes.actions import counters, queueing, storing
from mailboxes.actions.locks import action, lock, taken
from mailboxes.models import Mailbox, Message, MessageBody, Role
from mailboxes.recipients import DeliveryReport, Expansion, RecipientStatus, Resolution, expansion, resolution_of
from mailcore.dsn import UNASKED, RecipientReport, Requests, build_dsn
from mailcore.mime import ParsedMessage, parse_message
from sieve.delivery import Filing, folders_to_lock

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


def _store(items: Sequence[_Incoming]) -> None:
    """Store each message once and a copy for each of its accounts, charging quota; fills in the reports.

    Bodies and threads are written and looked up first, holding no lock another delivery waits for. Then, in
    the store's lock order, the folders and the accounts (one statement each, or none for a single Inbox: see
    below), all the Inboxes' UIDs reserved in one statement and all the accounts charged in another, and one
    INSERT of every copy. A copy whose account has no room left is not stored (its UID stays unused: UIDs must
    ascend, they need not be dense).
    """
    bodies = [MessageBody(raw=item.stored, size=len(item.stored)) for item in items]
    for item, body in zip(items, bodies, strict=True):
        item.body = body
    bulk.insert(bodies)
    by_account: dict[int, list[_Incoming]] = {}
    for item in items:
        for account_id in item.account_ids:
            by_account.setdefault(account_id, []).append(item)
    # Sieve: the accounts' scripts take messages out of the Inbox path, flag them, file them elsewhere.
    filing = Filing(items, by_account)
    threads = storing.threads(
        {
            account_id: [item.parsed for item in group if item.parsed is not None]
            for account_id, group in by_account.items()
        }
    )
    junk_folders = _junk_folders(items)
    other_folders = [*junk_folders.values(), *filing.folders]
    accounts = set(by_account) | filing.accounts
    # One Inbox and its account (the MX's common case): the two UPDATEs below lock them in the store's order,
    # the folder and then the account, so only the lock helper's record is needed, not two statements more.
    single = len(by_account) == 1 and accounts == set(by_account) and not other_folders and not filing.reached
    if not single:
        lock(folders=other_folders, inboxes_of=[*by_account, *filing.reached], accounts=accounts)
    inboxes = counters.allocate_inbox_uids_many({account_id: len(group) for account_id, group in by_account.items()})
    charges = counters.charge_quota_many(
        {account_id: [len(item.stored) for item in group] for account_id, group in by_account.items()}
    )
    if single:
        [(account_id, (inbox_id, _, _))] = inboxes.items()
        taken(folder=inbox_id, account=account_id)
    rows: list[tuple[_Incoming, Message]] = []
    for account_id, group in sorted(by_account.items()):
        inbox_id, first_uid, modseq = inboxes[account_id]
        charged = charges[account_id]
        for offset, (item, fits, thread_id) in enumerate(zip(group, charged, threads[account_id], strict=True)):
            if not fits:
                continue
            item.charged.append(account_id)
            assert item.parsed is not None
            assert item.body is not None
            row = storing.message_row(
                item.parsed,
                account_id=account_id,
                mailbox_id=inbox_id,
                uid=first_uid + offset,
                modseq=modseq,
                body=item.body,
                thread_id=thread_id,
            )
            filing.flags(row, item, account_id)
            rows.append((item, row))
    junked = _into_junk(rows, junk_folders)
    bulk.insert([message for _, message in rows])
    filed = filing.store()
    for item, message in rows:
        item.report.message_ids.append(message.pk)
    changes.notify_many([*((account_id, inboxes[account_id][0]) for account_id in by_account), *junked])
    used = {message.body_id for _, message in rows} | {message.body_id for message in filed}
    unused = [item.body.pk for item in items if item.body is not None and item.body.pk not in used]
    if unused:
        MessageBody.objects.filter(pk__in=unused).delete()
    for item in items:
        _report_full(item)


def _junk_folders(items: Sequence[_Incoming]) -> dict[int, int]:
    """The Junk folder of each account that one of `items` is filed into Junk for."""
    wanted = {account_id for item in items for account_id in item.account_ids if item.into_junk(account_id)}
    if not wanted:
        return {}
    return dict(Mailbox.objects.filter(account_id__in=wanted, role=Role.JUNK).values_list("account_id", "pk"))


def _into_junk(rows: Sequence[tuple[_Incoming, Message]], junk_folders: Mapping[int, int]) -> set[tuple[int, int]]:
    """Re-file the copies the junk verdict chose into their account's Junk folder before they are written,
    with UIDs of that folder (the Inbox UIDs reserved for them stay unused: UIDs ascend, they need not be
    dense). Returns the (account, folder) pairs to notify."""
    by_folder: dict[int, list[Message]] = {}
    for item, row in rows:
        if row.account_id in junk_folders and item.into_junk(row.account_id):
            by_folder.setdefault(junk_folders[row.account_id], []).append(row)
    for folder_id, copies in sorted(by_folder.items()):
        first_uid, modseq = counters.allocate_uids(folder_id, len(copies))
        for offset, row in enumerate(copies):
            row.mailbox_id, row.uid, row.modseq = folder_id, first_uid + offset, modseq
    return {(copies[0].account_id, folder_id) for folder_id, copies in by_folder.items()}


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

    A message the recipients' Sieve scripts reject for all of them is stored for no one and sends no notice: its
    report's `refused` holds the reason for the MX's DATA reply (sieve/delivery.py `Filing`).
    """
    try:
        return _deliver_together(deliveries, _known(resolved), junk)
    except Exception:
        return _deliver_each(deliveries, junk)


@action
def _deliver_together(
    deliveries: Sequence[Delivery], expansions: Expansions, junk: Sequence[JunkFor] = ()
) -> list[DeliveryReport | Exception]:
    with changes.batched():
        results = _deliver_group(deliveries, expansions, junk, refusable=True)
        for delivery, result in zip(deliveries, results, strict=True):
            if isinstance(result, DeliveryReport):
                _pass_on(delivery, result)
        return results


@action
def _deliver_each(deliveries: Sequence[Delivery], junk: Sequence[JunkFor] = ()) -> list[DeliveryReport | Exception]:
    """The group again, its addresses looked up afresh and every lock it may need taken first (senders' too,
    for DSNs), then each message in its own savepoint: the one that fails is rolled back alone and returned as
    its exception, the others commit together. Savepoints cost two statements per message, so they are only
    paid for when something went wrong."""
    results: list[DeliveryReport | Exception] = []
    expansions: Expansions = {}
    lock_up_front(deliveries, expansions)
    with changes.batched():
        for index, delivery in enumerate(deliveries):
            try:
                with transaction.atomic():  # this delivery's savepoint
                    [result] = _deliver_group([delivery], expansions, junk[index : index + 1], refusable=True)
                    if isinstance(result, DeliveryReport):
                        _pass_on(delivery, result)
            except Exception as exc:  # rolled back to the savepoint; the rest go on
                result = exc
            results.append(result)
    return results


def _pass_on(delivery: Delivery, report: DeliveryReport) -> None:
    """After a received message is stored: queue its alias forwards for the relay, with the original envelope
    sender (no SRS rewriting, and no DKIM signature: we are not its author), and tell the sender about
    recipients refused at DATA."""
    raw, envelope_sender, _ = delivery
    queueing.pass_on(raw, envelope_sender, report, relay_remote=False, author_domain=None)
    _bounce_refused(raw, envelope_sender, report, relayed=False)


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
        ret=requests.ret,
        envid=requests.envid,
    )
    if deliver(dsn, "", [envelope_sender]).results.get(envelope_sender) is RecipientStatus.REMOTE:
        queueing.enqueue(dsn, "", [envelope_sender], author_domain=None)
