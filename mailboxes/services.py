"""Every change to mail state goes through a function here, and each function is one transaction.

Lock order, kept by every function so concurrent sessions cannot deadlock: folder rows (ascending id), then
account rows (ascending id), then message rows. Taking a folder's row lock is also how UIDs are allocated:
`UPDATE ... SET uidnext = uidnext + n ... RETURNING` both locks the row and reserves the UIDs, so UIDs in a
folder ascend in commit order even with many concurrent deliveries (RFC 3501 2.3.1.1).

Every change raises the folder's `highestmodseq` and, on PostgreSQL, sends a NOTIFY on `changes.CHANNEL`
inside the transaction, so other processes hear of it exactly when it commits.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from mailboxes import bulk, changes
from mailboxes.models import (
    STANDARD_FOLDERS,
    Account,
    Alias,
    AuthFailure,
    Domain,
    Mailbox,
    Message,
    MessageBody,
    Role,
    split_address,
)
from mailcore.crlf import crlf_size
from mailcore.imap_wire import message_wire
from mailcore.mime import ParsedMessage, parse_message
from mailcore.subject import base_subject

# --- Errors --------------------------------------------------------------------------------------------------


class ServiceError(Exception):
    """A request the store refuses; the message is safe to show to the user."""


class UnknownDomain(ServiceError):
    pass


class AlreadyExists(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class InvalidName(ServiceError):
    pass


class OverQuota(ServiceError):
    pass


# --- Domains and accounts -------------------------------------------------------------------------------------


@transaction.atomic
def create_domain(name: str) -> Domain:
    name = name.strip().lower().rstrip(".")
    if not name or "@" in name or " " in name:
        raise InvalidName(f"{name!r} is not a domain name")
    if Domain.objects.filter(name=name).exists():
        raise AlreadyExists(f"domain {name} exists already")
    return Domain.objects.create(name=name)


@transaction.atomic
def create_account(
    address: str,
    password: str | None,
    *,
    quota_bytes: int = 0,
    display_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> Account:
    """A new account with its standard folders (Inbox, Sent, Drafts, Trash, Junk, Archive)."""
    local, domain_name = split_address(address)
    if not local or not domain_name or len(local) > 64:
        raise InvalidName(f"{address!r} is not a valid address")
    domain = Domain.objects.filter(name=domain_name).first()
    if domain is None:
        raise UnknownDomain(f"domain {domain_name} does not exist; create it first")
    if Account.objects.filter(domain=domain, local_part=local).exists():
        raise AlreadyExists(f"account {local}@{domain_name} exists already")
    account = Account(
        address=f"{local}@{domain_name}",
        domain=domain,
        local_part=local,
        display_name=display_name,
        quota_bytes=quota_bytes,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    account.set_password(password)
    account.save()
    Mailbox.objects.bulk_create(Mailbox(account=account, name=name, role=role) for name, role in STANDARD_FOLDERS)
    return account


@transaction.atomic
def set_password(account: Account, password: str) -> None:
    account.set_password(password)
    account.save(update_fields=["password"])


@transaction.atomic
def create_alias(address: str, destinations: Sequence[str]) -> Alias:
    """An alias; an address like "@example.com" makes a catch-all for the whole domain."""
    local, domain_name = split_address(address)
    domain = Domain.objects.filter(name=domain_name).first()
    if domain is None:
        raise UnknownDomain(f"domain {domain_name} does not exist; create it first")
    if not destinations:
        raise InvalidName("an alias needs at least one destination")
    return Alias.objects.create(domain=domain, local_part=local, destinations=", ".join(destinations))


# --- Authentication -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthResult:
    account: Account | None
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.account is not None


_dummy_hash: str | None = None


def _spend_hash_time(password: str) -> None:
    """Check against a fixed hash so an unknown address costs the same time as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = make_password("not the password of anyone")
    check_password(password, _dummy_hash)


@transaction.atomic
def authenticate(address: str, password: str, *, remote_ip: str | None, protocol: str) -> AuthResult:
    """Check a login for any protocol, throttled per address and per client IP.

    Unknown addresses, wrong passwords and disabled accounts all fail the same way and take the same time.
    After MAILSITE_AUTH_MAX_FAILURES failures for an address (or MAILSITE_AUTH_MAX_IP_FAILURES from one IP)
    within MAILSITE_AUTH_WINDOW seconds, further attempts fail without checking the password.
    """
    address = address.strip().lower()
    now = timezone.now()
    since = now - datetime.timedelta(seconds=settings.MAILSITE_AUTH_WINDOW)
    recent = AuthFailure.objects.filter(created__gte=since)
    if recent.filter(address=address).count() >= settings.MAILSITE_AUTH_MAX_FAILURES or (
        remote_ip and recent.filter(remote_ip=remote_ip).count() >= settings.MAILSITE_AUTH_MAX_IP_FAILURES
    ):
        return AuthResult(None, throttled=True)
    account = Account.objects.filter(address=address).first()
    if account is None:
        _spend_hash_time(password)
    elif account.check_password(password) and account.is_active and account.domain.active:
        AuthFailure.objects.filter(address=address).delete()
        return AuthResult(account)
    AuthFailure.objects.filter(created__lt=since).delete()
    AuthFailure.objects.create(address=address[:320], remote_ip=remote_ip or None, protocol=protocol)
    return AuthResult(None)


# --- Recipients -----------------------------------------------------------------------------------------------


class RecipientStatus(enum.StrEnum):
    LOCAL = "local"  # resolves to local accounts and/or external forwarding addresses
    UNKNOWN = "unknown"  # a local domain, but no such account or alias
    REMOTE = "remote"  # not one of our domains
    OVER_QUOTA = "over_quota"  # every local account it resolves to is full


@dataclass(frozen=True)
class _Mailholder:
    """What resolution needs of an account: its id and room."""

    pk: int
    quota_bytes: int
    used_bytes: int


@dataclass(frozen=True)
class _Expansion:
    """What an address expands to, before any size is known: `_expand`'s answer and what it collected."""

    found: bool | None
    accounts: dict[int, _Mailholder]
    external: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    address: str
    status: RecipientStatus
    account_ids: tuple[int, ...] = ()  # the local accounts it reaches that have room
    external: tuple[str, ...] = ()
    # What the address expanded to, so a delivery soon after (SMTP's DATA after RCPT) need not look it up again.
    expansion: _Expansion | None = field(default=None, repr=False, compare=False)


_MAX_ALIAS_DEPTH = 10


# One round trip per address: the domain's aliases that could apply, its accounts that could apply, and whether
# the domain is ours at all. Plain SQL: this runs for every RCPT, and at delivery for addresses RCPT did not
# look up (webmail, submission, the savepoint retry).
_RESOLVE_SQL = f"""
    SELECT 'alias', a.local_part, a.destinations, 0, 0, 0
    FROM {Alias._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id
    WHERE d.name = %(domain)s AND d.active AND a.active AND a.local_part IN (%(local)s, %(base)s, '')
    UNION ALL
    SELECT 'account', c.local_part, '', c.id, c.quota_bytes, c.used_bytes
    FROM {Account._meta.db_table} c JOIN {Domain._meta.db_table} d ON d.id = c.domain_id
    WHERE d.name = %(domain)s AND d.active AND c.is_active AND c.local_part IN (%(local)s, %(base)s)
    UNION ALL
    SELECT 'domain', '', '', 0, 0, 0 FROM {Domain._meta.db_table} d WHERE d.name = %(domain)s AND d.active
"""


def _expand(address: str, depth: int, accounts: dict[int, _Mailholder], external: list[str]) -> bool | None:
    """Add what `address` resolves to. True: found; False: local domain, nothing found; None: not local.

    Precedence, as most mail servers do it: an exact alias, then an account, then the same two for the
    address without its +tag, then the domain's catch-all.
    """
    local, domain_name = split_address(address)
    if depth > _MAX_ALIAS_DEPTH:
        return False
    delimiter = settings.MAILSITE_RECIPIENT_DELIMITER
    base = local.split(delimiter, 1)[0] if delimiter and delimiter in local else local
    with connection.cursor() as cursor:
        cursor.execute(_RESOLVE_SQL, {"domain": domain_name, "local": local, "base": base})
        rows = cursor.fetchall()
    aliases = {part: destinations for kind, part, destinations, *_ in rows if kind == "alias"}
    candidates = {row[1]: _Mailholder(*row[3:]) for row in rows if row[0] == "account"}
    is_local = any(row[0] == "domain" for row in rows)
    destinations = aliases.get(local)
    if destinations is None:
        account = candidates.get(local)
        if account is None:
            destinations = aliases.get(base)
            account = None if destinations is not None else candidates.get(base)
        if account is not None:
            accounts[account.pk] = account
            return True
    if destinations is None:
        destinations = aliases.get("")
    if destinations is None:
        if is_local:
            return False
        if depth == 0:
            return None
        if address not in external:
            external.append(address)
        return True
    found = False
    for destination in Alias(destinations=destinations).destination_list:
        found = bool(_expand(destination, depth + 1, accounts, external)) or found
    return found


def _expansion(address: str) -> _Expansion:
    accounts: dict[int, _Mailholder] = {}
    external: list[str] = []
    found = _expand(address, 0, accounts, external)
    return _Expansion(found, accounts, tuple(external))


def _resolution(address: str, expansion: _Expansion, size: int) -> Resolution:
    if expansion.found is None:
        return Resolution(address, RecipientStatus.REMOTE, expansion=expansion)
    if not expansion.found or not (expansion.accounts or expansion.external):
        return Resolution(address, RecipientStatus.UNKNOWN, expansion=expansion)
    roomy = tuple(pk for pk, account in expansion.accounts.items() if _has_room(account, size))
    if expansion.accounts and not roomy and not expansion.external:
        return Resolution(address, RecipientStatus.OVER_QUOTA, expansion=expansion)
    return Resolution(address, RecipientStatus.LOCAL, roomy, expansion.external, expansion)


def resolve_recipient(address: str, *, size: int = 0) -> Resolution:
    """What a recipient address means here (aliases, user+tag and catch-all expanded); reads only."""
    return _resolution(address, _expansion(address), size)


def _has_room(account: _Mailholder, size: int) -> bool:
    return account.quota_bytes == 0 or account.used_bytes + max(size, 1) <= account.quota_bytes


def is_local_domain(domain_name: str) -> bool:
    return Domain.objects.filter(name=domain_name.strip().lower().rstrip("."), active=True).exists()


# --- Delivery -------------------------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What became of each envelope recipient of one `deliver` call."""

    message_ids: list[int] = field(default_factory=list)  # stored Message rows
    results: dict[str, RecipientStatus] = field(default_factory=dict)  # per envelope recipient
    forward: list[str] = field(default_factory=list)  # external addresses reached through aliases

    @property
    def accepted(self) -> list[str]:
        return [rcpt for rcpt, status in self.results.items() if status is RecipientStatus.LOCAL]


def _allocate_uids(mailbox_id: int, count: int) -> tuple[int, int]:
    """Lock the folder row and reserve `count` UIDs. Returns (first uid, new modseq)."""
    table = Mailbox._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1 "
            "WHERE id = %s RETURNING uidnext, highestmodseq",
            [count, mailbox_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("the folder no longer exists")
    return row[0] - count, row[1]


# Only while the account and its domain take mail: a recipient looked up at RCPT may have been disabled since.
_ALLOCATE_INBOX_SQL = f"""
    UPDATE {Mailbox._meta.db_table} SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1
    WHERE account_id = %s AND role = %s AND EXISTS (
        SELECT 1 FROM {Account._meta.db_table} a JOIN {Domain._meta.db_table} d ON d.id = a.domain_id
        WHERE a.id = %s AND a.is_active AND d.active
    )
    RETURNING id, uidnext, highestmodseq
"""


def _allocate_inbox_uids(account_id: int, count: int) -> tuple[int, int, int]:
    """Lock an account's Inbox and reserve `count` UIDs. Returns (inbox id, first uid, new modseq)."""
    with connection.cursor() as cursor:
        cursor.execute(_ALLOCATE_INBOX_SQL, [count, account_id, Role.INBOX.value, account_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("the account has no Inbox, or takes no mail")
    return row[0], row[1] - count, row[2]


def _bump_modseq(mailbox_id: int) -> int:
    return _allocate_uids(mailbox_id, 0)[1]


def _charge_quota(account_id: int, size: int) -> bool:
    """Add `size` to the account's usage if it fits its quota; False (and no change) if it does not."""
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used_bytes = used_bytes + %s "
            "WHERE id = %s AND (quota_bytes = 0 OR used_bytes + %s <= quota_bytes)",
            [size, account_id, size],
        )
        return cursor.rowcount == 1


def _charge_quota_each(account_id: int, sizes: Sequence[int]) -> list[bool]:
    """Charge several messages: all at once if they fit together, else one by one in order (those that fit)."""
    if _charge_quota(account_id, sum(sizes)):
        return [True] * len(sizes)
    return [_charge_quota(account_id, size) for size in sizes]


def _release_quota(account_id: int, size: int) -> None:
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used_bytes = CASE WHEN used_bytes > %s THEN used_bytes - %s ELSE 0 END WHERE id = %s",
            [size, size, account_id],
        )


# A hostile References field can list thousands of ids; the most recent ones (at its end) are enough to thread.
_THREADING_REFERENCES = 50


def _references(parsed: ParsedMessage) -> list[str]:
    # Its own Message-ID counts too: the copy a sender keeps in Sent joins the thread of the delivered copy.
    refs = [*parsed.references[-_THREADING_REFERENCES:], parsed.in_reply_to, parsed.message_id]
    return [ref for ref in refs if ref]


def _known_threads(wanted: set[tuple[int, str]]) -> dict[tuple[int, str], uuid.UUID]:
    """The conversations of stored messages, by (account, Message-ID), for the pairs in `wanted` (one query)."""
    if not wanted:
        return {}
    accounts = sorted({account_id for account_id, _ in wanted})
    references = sorted({reference for _, reference in wanted})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT account_id, message_id, thread_id FROM {Message._meta.db_table} "
            f"WHERE account_id IN ({', '.join(['%s'] * len(accounts))}) "
            f"AND message_id IN ({', '.join(['%s'] * len(references))})",
            [*accounts, *references],
        )
        rows = cursor.fetchall()
    return {
        (account_id, ref): uuid.UUID(str(thread)) for account_id, ref, thread in rows if (account_id, ref) in wanted
    }


def _thread_by_subject(account_id: int, parsed: ParsedMessage) -> uuid.UUID | None:
    """A "Re:"/"Fwd:" subject without usable references joins the latest conversation of that subject."""
    subject = base_subject(parsed.subject)
    if not subject or subject == parsed.subject.strip().casefold():
        return None
    since = timezone.now() - datetime.timedelta(days=60)
    for thread_id, candidate in (
        Message.objects.filter(account_id=account_id, internal_date__gte=since, subject__icontains=subject)
        .order_by("-internal_date")
        .values_list("thread_id", "subject")[:20]
    ):
        if base_subject(candidate) == subject:
            return thread_id
    return None


def _join(addresses: Iterable) -> str:
    return ", ".join(f"{a.name} <{a.address}>" if a.name else a.address for a in addresses)


def _message_row(
    parsed: ParsedMessage,
    *,
    account_id: int,
    mailbox_id: int,
    uid: int,
    modseq: int,
    body: MessageBody,
    thread_id: uuid.UUID,
) -> Message:
    sender = parsed.from_[0] if parsed.from_ else None
    imap_envelope, imap_bodystructure, imap_body = message_wire(parsed)
    return Message(
        account_id=account_id,
        mailbox_id=mailbox_id,
        uid=uid,
        modseq=modseq,
        body=body,
        size=body.size,
        crlf_size=crlf_size(body.raw),
        subject=parsed.subject,
        from_name=(sender.name if sender else "")[:300],
        from_address=(sender.address if sender else "")[:320],
        to_addresses=_join(parsed.to),
        cc_addresses=_join(parsed.cc),
        bcc_addresses=_join(parsed.bcc),
        sent_date=parsed.date,
        message_id=parsed.message_id[:998],
        in_reply_to=parsed.in_reply_to[:998],
        references=" ".join(parsed.references),
        thread_id=thread_id,
        has_attachments=parsed.has_attachments,
        snippet=parsed.snippet[:200],
        search_text=parsed.text,
        envelope=parsed.envelope_json(),
        structure=parsed.structure_json(),
        imap_envelope=imap_envelope,
        imap_bodystructure=imap_bodystructure,
        imap_body=imap_body,
    )


def with_return_path(raw: bytes, envelope_sender: str) -> bytes:
    """Prepend the Return-Path header the final delivery adds (RFC 5321 4.4)."""
    return b"Return-Path: <" + envelope_sender.encode("utf-8") + b">\r\n" + raw


Delivery = tuple[bytes, str, Sequence[str]]  # raw message as received, envelope sender, envelope recipients


@dataclass
class _Incoming:
    """One message of a delivery group on its way into the store."""

    stored: bytes  # the raw message with its Return-Path
    report: DeliveryReport
    resolutions: list[Resolution]
    parsed: ParsedMessage | None = None
    body: MessageBody | None = None
    charged: list[int] = field(default_factory=list)  # accounts that got a copy

    @property
    def account_ids(self) -> list[int]:
        return sorted({pk for resolution in self.resolutions for pk in resolution.account_ids})


def _incoming(delivery: Delivery, expansions: dict[str, _Expansion]) -> _Incoming | Exception:
    """Resolve one message's recipients (each address once per group) and parse it if anyone local gets it.

    A message the parser refuses (MimeTooDeep, HeaderTooLarge) or fails on is returned as the exception: it
    alone is refused, before anything of the group is written.
    """
    raw, envelope_sender, recipients = delivery
    stored = with_return_path(raw, envelope_sender)
    item = _Incoming(stored, DeliveryReport(), [])
    for rcpt in recipients:
        if rcpt not in expansions:
            expansions[rcpt] = _expansion(rcpt)
        resolution = _resolution(rcpt, expansions[rcpt], len(stored))
        item.resolutions.append(resolution)
        item.report.results[rcpt] = resolution.status
        item.report.forward.extend(a for a in resolution.external if a not in item.report.forward)
    if item.account_ids:
        try:
            item.parsed = parse_message(stored)
        except Exception as exc:
            return exc
    return item


def _threads(messages: Mapping[int, Sequence[ParsedMessage]]) -> dict[int, list[uuid.UUID]]:
    """The conversation each account's messages join there: the first of a message's References, In-Reply-To
    or own Message-ID that the account already has (one query for all; earlier messages of the same list
    count), then a reply subject, else a new conversation."""
    known = _known_threads(
        {
            (account_id, ref)
            for account_id, parsed in messages.items()
            for message in parsed
            for ref in _references(message)
        }
    )
    threads: dict[int, list[uuid.UUID]] = {}
    for account_id, parsed in messages.items():
        threads[account_id] = []
        for message in parsed:
            found = next((known[account_id, ref] for ref in _references(message) if (account_id, ref) in known), None)
            thread = found or _thread_by_subject(account_id, message) or uuid.uuid4()
            if message.message_id:
                known.setdefault((account_id, message.message_id), thread)
            threads[account_id].append(thread)
    return threads


def _store(items: Sequence[_Incoming]) -> None:
    """Store each message once and a copy for each of its accounts, charging quota; fills in the reports.

    Bodies and threads are written and looked up first, holding no lock another delivery waits for. Then, in
    the store's lock order, each Inbox (reserving all the group's UIDs for it in one statement) and each
    account (charging the group's sizes at once), and one INSERT of every copy. A copy whose account has no
    room left is not stored (its UID stays unused: UIDs must ascend, they need not be dense).
    """
    for item in items:
        item.body = MessageBody(raw=item.stored, size=len(item.stored))
    bulk.insert([item.body for item in items])
    by_account: dict[int, list[_Incoming]] = {}
    for item in items:
        for account_id in item.account_ids:
            by_account.setdefault(account_id, []).append(item)
    threads = _threads(
        {
            account_id: [item.parsed for item in group if item.parsed is not None]
            for account_id, group in by_account.items()
        }
    )
    inboxes = {
        account_id: _allocate_inbox_uids(account_id, len(group)) for account_id, group in sorted(by_account.items())
    }
    rows: list[tuple[_Incoming, Message]] = []
    for account_id, group in sorted(by_account.items()):
        inbox_id, first_uid, modseq = inboxes[account_id]
        charged = _charge_quota_each(account_id, [len(item.stored) for item in group])
        for offset, (item, fits, thread_id) in enumerate(zip(group, charged, threads[account_id], strict=True)):
            if not fits:
                continue
            item.charged.append(account_id)
            assert item.parsed is not None
            assert item.body is not None
            row = _message_row(
                item.parsed,
                account_id=account_id,
                mailbox_id=inbox_id,
                uid=first_uid + offset,
                modseq=modseq,
                body=item.body,
                thread_id=thread_id,
            )
            rows.append((item, row))
    bulk.insert([message for _, message in rows])
    for item, message in rows:
        item.report.message_ids.append(message.pk)
    changes.notify_many((account_id, inboxes[account_id][0]) for account_id in by_account)
    unused = [item.body.pk for item in items if not item.charged and item.body is not None]
    if unused:
        MessageBody.objects.filter(pk__in=unused).delete()
    for item in items:
        _report_full(item)


def _report_full(item: _Incoming) -> None:
    """Recipients all of whose accounts filled up between RCPT and DATA are refused, not silently dropped."""
    for resolution in item.resolutions:
        accounts = set(resolution.account_ids)
        if accounts and not accounts & set(item.charged) and not resolution.external:
            item.report.results[resolution.address] = RecipientStatus.OVER_QUOTA


def _deliver_group(
    deliveries: Sequence[Delivery], resolved: Mapping[str, Resolution] | None = None
) -> list[DeliveryReport | Exception]:
    expansions = {
        address: resolution.expansion
        for address, resolution in (resolved or {}).items()
        if resolution.expansion is not None
    }
    incoming = [_incoming(delivery, expansions) for delivery in deliveries]
    storing = [item for item in incoming if isinstance(item, _Incoming) and item.account_ids]
    if storing:
        _store(storing)
    return [item if isinstance(item, Exception) else item.report for item in incoming]


# Within a caller's transaction no savepoint of its own: an error rolls back to the caller's (deliver_many's).
@transaction.atomic(savepoint=False)
def deliver(raw: bytes, envelope_sender: str, recipients: Sequence[str]) -> DeliveryReport:
    """Store one received message for its local recipients, in one transaction.

    `raw` is the message as received (with the SMTP layer's Received header); a Return-Path header is added.
    One body is stored and shared by every local account reached (duplicates after alias expansion are
    stored once). Recipients outside our domains are reported REMOTE and left to the caller (the outbound
    queue); external addresses reached through aliases are listed in `forward`.

    Raises mailcore.mime.MimeTooDeep / HeaderTooLarge for structurally hostile mail (nothing is stored).
    """
    [result] = _deliver_group([(raw, envelope_sender, recipients)])
    if isinstance(result, Exception):
        raise result
    return result


def submit(raw: bytes, envelope_sender: str, recipients: Sequence[str]) -> DeliveryReport:
    """Send a local user's message (submission, webmail): local recipients get it now; remote recipients and
    external alias destinations go to the outbound queue (DKIM-signed), all in one transaction. Recipients
    reported REMOTE were queued; delivery attempts start when the transaction commits."""
    from relay import queue  # the relay is built on the store, so the store imports it only when used

    return queue.accept(raw, envelope_sender, recipients)


@transaction.atomic
def submit_from_smtp(raw: bytes, envelope_sender: str, recipients: Sequence[str]) -> DeliveryReport:
    """`submit` for SMTP submission, which has one DATA reply for all recipients: a local recipient whose
    mailbox filled up (or who was removed) after RCPT gets no copy, and the sender a DSN saying so, as on the
    MX."""
    report = submit(raw, envelope_sender, recipients)
    _bounce_refused(raw, envelope_sender, report, relayed=True)
    return report


def deliver_many(
    deliveries: Sequence[Delivery], resolved: Mapping[str, Resolution] | None = None
) -> list[DeliveryReport | Exception]:
    """Messages received by the MX, stored in one transaction: one commit (one WAL flush) for a group of
    messages, and the group's rows written set-wise (see `_store`). Each message's alias forwards are queued
    for the relay in the same transaction (see `_pass_on`).

    `resolved` holds recent `resolve_recipient` answers (SMTP's RCPT replies), used instead of looking those
    addresses up again. What changed since is still caught: a full mailbox by the quota charge, a removed or
    disabled account (or domain) by the Inbox lock, which then fails.

    A message the parser refuses is returned as its exception, and the rest of the group is stored. If
    anything else raises, the group is redone by `_deliver_each`. An error that breaks the transaction itself
    (a lost connection) propagates and nothing is stored.
    """
    try:
        with transaction.atomic(), changes.batched():
            results = _deliver_group(deliveries, resolved)
            for delivery, result in zip(deliveries, results, strict=True):
                if isinstance(result, DeliveryReport):
                    _pass_on(delivery, result)
            return results
    except Exception:
        return _deliver_each(deliveries)


def _deliver_each(deliveries: Sequence[Delivery]) -> list[DeliveryReport | Exception]:
    """The group again, each message in its own savepoint and its addresses looked up afresh: the one that
    fails is rolled back alone and returned as its exception, the others commit together. Savepoints cost two
    statements per message, so they are only paid for when something went wrong."""
    results: list[DeliveryReport | Exception] = []
    with transaction.atomic(), changes.batched():
        for delivery in deliveries:
            try:
                with transaction.atomic():  # this delivery's savepoint
                    [result] = _deliver_group([delivery])
                    if isinstance(result, DeliveryReport):
                        _pass_on(delivery, result)
            except Exception as exc:  # rolled back to the savepoint; the rest go on
                result = exc
            results.append(result)
    return results


def _pass_on(delivery: Delivery, report: DeliveryReport) -> None:
    """After a received message is stored: queue its alias forwards for the relay, with the original envelope
    sender (no SRS rewriting), and tell the sender about recipients refused at DATA."""
    from relay import queue

    raw, envelope_sender, _ = delivery
    queue.pass_on(raw, envelope_sender, report, relay_remote=False)
    _bounce_refused(raw, envelope_sender, report, relayed=False)


# Why a recipient accepted at RCPT got no copy at DATA: (RFC 3463 status, text for the DSN).
_REFUSED_AT_DATA = {
    RecipientStatus.OVER_QUOTA: ("5.2.2", "mailbox full"),
    RecipientStatus.UNKNOWN: ("5.1.1", "no such mailbox here any more"),
    RecipientStatus.REMOTE: ("5.1.2", "the domain no longer receives mail here"),
}


def _bounce_refused(raw: bytes, envelope_sender: str, report: DeliveryReport, *, relayed: bool) -> None:
    """Recipients accepted at RCPT that got no copy at DATA, when others did: a mailbox filled up, or an
    account or domain was removed in between (REMOTE counts so only on the MX; on submission, `relayed`, it
    was queued for the relay).

    SMTP has one DATA reply for all recipients: it is 250 for those stored, so the sender learns about the
    others from a DSN (RFC 3464), delivered in the same transaction. When none got it the reply itself says so
    and no DSN is sent; never for a bounce (null sender).
    """
    statuses = set(report.results.values())
    refused = {
        rcpt: _REFUSED_AT_DATA[status]
        for rcpt, status in report.results.items()
        if status in _REFUSED_AT_DATA and not (relayed and status is RecipientStatus.REMOTE)
    }
    delivered = RecipientStatus.LOCAL in statuses or (relayed and RecipientStatus.REMOTE in statuses)
    if not refused or not delivered or not envelope_sender:
        return
    from mailcore.dsn import RecipientReport, build_dsn
    from relay import queue

    now = timezone.now()
    dsn = build_dsn(
        reporting_mta=settings.MAILSITE_HOSTNAME,
        to=envelope_sender,
        original=raw,
        recipients=[
            RecipientReport(rcpt, "failed", status, text, smtp_reply=False, last_attempt=now)
            for rcpt, (status, text) in refused.items()
        ],
        arrival=now,
        now=now,
    )
    if deliver(dsn, "", [envelope_sender]).results.get(envelope_sender) is RecipientStatus.REMOTE:
        queue.enqueue(dsn, "", [envelope_sender])


# --- Folder contents ------------------------------------------------------------------------------------------

SYSTEM_FLAGS = {
    "\\seen": "seen",
    "\\answered": "answered",
    "\\flagged": "flagged",
    "\\deleted": "deleted",
    "\\draft": "draft",
}


def flag_names(message: Message) -> list[str]:
    """IMAP flags of a message: system flags in their canonical spelling, then keywords."""
    names = [f"\\{column.capitalize()}" for column in SYSTEM_FLAGS.values() if getattr(message, column)]
    return names + message.keyword_list


def _split_flags(flags: Iterable[str]) -> tuple[dict[str, bool], list[str]]:
    system: dict[str, bool] = {}
    keywords: list[str] = []
    for flag in flags:
        column = SYSTEM_FLAGS.get(flag.lower())
        if column:
            system[column] = True
        elif flag.startswith("\\"):
            continue  # \Recent and unknown system flags are not stored (RFC 3501 2.3.2)
        elif flag not in keywords:
            keywords.append(flag)
    return system, keywords


def _locked_mailbox(account: Account, mailbox_id: int) -> tuple[Mailbox, int]:
    mailbox = Mailbox.objects.filter(account=account, pk=mailbox_id).first()
    if mailbox is None:
        raise NotFound("no such folder")
    return mailbox, _bump_modseq(mailbox.pk)


@transaction.atomic
def append(
    account: Account,
    mailbox_id: int,
    raw: bytes,
    *,
    flags: Iterable[str] = (),
    internal_date: datetime.datetime | None = None,
) -> Message:
    """Store a message the user supplies (IMAP APPEND, webmail Sent copy and drafts)."""
    mailbox = Mailbox.objects.filter(account=account, pk=mailbox_id).first()
    if mailbox is None:
        raise NotFound("no such folder")
    parsed = parse_message(raw)
    uid, modseq = _allocate_uids(mailbox.pk, 1)
    if not _charge_quota(account.pk, len(raw)):
        raise OverQuota("the mailbox is full")
    body = MessageBody.objects.create(raw=raw, size=len(raw))
    message = _message_row(
        parsed,
        account_id=account.pk,
        mailbox_id=mailbox.pk,
        uid=uid,
        modseq=modseq,
        body=body,
        thread_id=_threads({account.pk: [parsed]})[account.pk][0],
    )
    system, keywords = _split_flags(flags)
    for column, value in system.items():
        setattr(message, column, value)
    message.keywords = f" {' '.join(keywords)} " if keywords else ""
    message.internal_date = internal_date or timezone.now()
    message.save(force_insert=True)
    changes.notify(account.pk, mailbox.pk)
    return message


class FlagMode(enum.StrEnum):
    REPLACE = "replace"  # STORE FLAGS
    ADD = "add"  # STORE +FLAGS
    REMOVE = "remove"  # STORE -FLAGS


@transaction.atomic
def set_flags(
    account: Account, mailbox_id: int, uids: Sequence[int], flags: Iterable[str], mode: FlagMode
) -> list[Message]:
    """Change flags of the messages with these UIDs; returns the changed messages with their new flags."""
    _, modseq = _locked_mailbox(account, mailbox_id)
    system, keywords = _split_flags(flags)
    messages = list(
        Message.objects.filter(mailbox_id=mailbox_id, uid__in=uids)
        .only("id", "uid", "modseq", "keywords", *SYSTEM_FLAGS.values())
        .order_by("uid")
    )
    changed = []
    for message in messages:
        before = (tuple(getattr(message, c) for c in SYSTEM_FLAGS.values()), message.keywords)
        current = message.keyword_list
        if mode is FlagMode.REPLACE:
            for column in SYSTEM_FLAGS.values():
                setattr(message, column, system.get(column, False))
            current = keywords
        else:
            for column in system:
                setattr(message, column, mode is FlagMode.ADD)
            if mode is FlagMode.ADD:
                current = current + [k for k in keywords if k not in current]
            else:
                current = [k for k in current if k not in keywords]
        message.keywords = f" {' '.join(current)} " if current else ""
        if (tuple(getattr(message, c) for c in SYSTEM_FLAGS.values()), message.keywords) != before:
            message.modseq = modseq
            changed.append(message)
    Message.objects.bulk_update(changed, ["modseq", "keywords", *SYSTEM_FLAGS.values()])
    if changed:
        changes.notify(account.pk, mailbox_id)
    return changed


@transaction.atomic
def copy(account: Account, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]:
    """Copy messages (sharing their bodies) into another folder; returns (source uid, new uid) pairs.

    INTERNALDATE and flags are kept (RFC 3501 6.4.7). Counts against the quota.
    """
    target = Mailbox.objects.filter(account=account, pk=target_id).first()
    if target is None or not Mailbox.objects.filter(account=account, pk=mailbox_id).exists():
        raise NotFound("no such folder")
    for pk in sorted({mailbox_id, target_id}):
        _bump_modseq(pk)
    messages = list(Message.objects.filter(mailbox_id=mailbox_id, uid__in=uids).order_by("uid"))
    if not messages:
        return []
    total = sum(m.size for m in messages)
    if not _charge_quota(account.pk, total):
        raise OverQuota("the mailbox is full")
    source_uids = [m.uid for m in messages]
    first_uid, modseq = _allocate_uids(target.pk, len(messages))
    for offset, message in enumerate(messages):
        message.pk = None
        message.mailbox_id = target.pk
        message.uid = first_uid + offset
        message.modseq = modseq
    bulk.insert(messages)
    changes.notify(account.pk, target.pk)
    return list(zip(source_uids, [m.uid for m in messages], strict=True))


@transaction.atomic
def move(account: Account, mailbox_id: int, uids: Sequence[int], target_id: int) -> list[tuple[int, int]]:
    """Move messages to another folder (RFC 6851); returns (source uid, new uid) pairs.

    The rows keep their identity, flags and INTERNALDATE and get new UIDs in the target folder.
    """
    if mailbox_id == target_id:
        raise InvalidName("source and target are the same folder")
    target = Mailbox.objects.filter(account=account, pk=target_id).first()
    if target is None or not Mailbox.objects.filter(account=account, pk=mailbox_id).exists():
        raise NotFound("no such folder")
    modseqs = {pk: _bump_modseq(pk) for pk in sorted({mailbox_id, target_id})}
    messages = list(Message.objects.filter(mailbox_id=mailbox_id, uid__in=uids).only("id", "uid").order_by("uid"))
    if not messages:
        return []
    first_uid, modseq = _allocate_uids(target.pk, len(messages))
    mapping = []
    for offset, message in enumerate(messages):
        mapping.append((message.uid, first_uid + offset))
        message.mailbox_id = target.pk
        message.uid = first_uid + offset
        message.modseq = max(modseq, modseqs[target_id])
    Message.objects.bulk_update(messages, ["mailbox", "uid", "modseq"])
    changes.notify_many([(account.pk, mailbox_id), (account.pk, target.pk)])
    return mapping


def _remove(account_id: int, messages: Q) -> list[int]:
    """Delete message rows, release their quota and drop bodies no other message shares."""
    rows = list(Message.objects.filter(messages).values_list("id", "uid", "size", "body_id"))
    if not rows:
        return []
    _release_quota(account_id, sum(size for _, _, size, _ in rows))
    Message.objects.filter(pk__in=[pk for pk, *_ in rows]).delete()
    MessageBody.objects.filter(pk__in={body for *_, body in rows}, messages__isnull=True).delete()
    return sorted(uid for _, uid, _, _ in rows)


@transaction.atomic
def expunge(account: Account, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
    """Remove messages flagged \\Deleted (only those among `uids` when given, for UID EXPUNGE).

    Returns the removed UIDs in ascending order.
    """
    _locked_mailbox(account, mailbox_id)
    condition = Q(mailbox_id=mailbox_id, deleted=True)
    if uids is not None:
        condition &= Q(uid__in=uids)
    removed = _remove(account.pk, condition)
    if removed:
        changes.notify(account.pk, mailbox_id)
    return removed


@transaction.atomic
def delete_messages(account: Account, mailbox_id: int, uids: Sequence[int]) -> list[int]:
    """Remove these messages whatever their flags (POP3 DELE at QUIT, webmail "delete forever")."""
    _locked_mailbox(account, mailbox_id)
    removed = _remove(account.pk, Q(mailbox_id=mailbox_id, uid__in=uids))
    if removed:
        changes.notify(account.pk, mailbox_id)
    return removed


# --- Folders ---------------------------------------------------------------------------------------------------

MAX_FOLDER_DEPTH = 20


def normalise_folder_name(name: str) -> str:
    """Validate a folder path ("/"-separated); INBOX in any case is the Inbox (RFC 3501 5.1)."""
    if name.upper() == "INBOX":
        return "INBOX"
    parts = name.split("/")
    if (
        not name
        or len(name) > 512
        or any(not part or part in {".", ".."} or part != part.strip() for part in parts)
        or len(parts) > MAX_FOLDER_DEPTH
        or any(ord(ch) < 32 or ch in "\x7f*%" for ch in name)
    ):
        raise InvalidName(f"{name!r} is not a valid folder name")
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return "/".join(parts)


@transaction.atomic
def create_mailbox(account: Account, name: str) -> Mailbox:
    """Create a folder and any missing parents (RFC 3501 6.3.3)."""
    name = normalise_folder_name(name)
    if Mailbox.objects.filter(account=account, name=name).exists():
        raise AlreadyExists("a folder of that name exists already")
    parts = name.split("/")
    created = None
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        created, _ = Mailbox.objects.get_or_create(account=account, name=path)
    assert created is not None
    return created


@transaction.atomic
def delete_mailbox(account: Account, mailbox_id: int) -> None:
    """Delete a folder and its messages; the Inbox and folders with subfolders cannot be deleted."""
    mailbox, _ = _locked_mailbox(account, mailbox_id)
    if mailbox.role == Role.INBOX:
        raise InvalidName("the Inbox cannot be deleted")
    if Mailbox.objects.filter(account=account, name__startswith=mailbox.name + "/").exists():
        raise InvalidName("the folder has subfolders; delete them first")
    _remove(account.pk, Q(mailbox_id=mailbox.pk))
    mailbox.delete()
    changes.notify(account.pk, mailbox_id)


@transaction.atomic
def rename_mailbox(account: Account, mailbox_id: int, new_name: str) -> Mailbox:
    """Rename a folder with its subfolders, keeping UIDs and UIDVALIDITY (RFC 3501 6.3.5).

    Renaming the Inbox moves its messages into a new folder of that name and leaves the Inbox empty.
    """
    mailbox, _ = _locked_mailbox(account, mailbox_id)
    new_name = normalise_folder_name(new_name)
    if new_name == "INBOX" or Mailbox.objects.filter(account=account, name=new_name).exists():
        raise AlreadyExists("a folder of that name exists already")
    parent = new_name.rpartition("/")[0]
    if parent:
        for depth in range(1, parent.count("/") + 2):
            Mailbox.objects.get_or_create(account=account, name="/".join(parent.split("/")[:depth]))
    if mailbox.role == Role.INBOX:
        target = Mailbox.objects.create(account=account, name=new_name)
        uids = list(Message.objects.filter(mailbox=mailbox).values_list("uid", flat=True))
        move(account, mailbox.pk, uids, target.pk)
        return target
    old_prefix = mailbox.name + "/"
    for child in Mailbox.objects.filter(account=account, name__startswith=old_prefix):
        child.name = new_name + "/" + child.name.removeprefix(old_prefix)
        child.save(update_fields=["name"])
    mailbox.name = new_name
    mailbox.save(update_fields=["name"])
    changes.notify(account.pk, mailbox.pk)
    return mailbox


@transaction.atomic
def set_subscribed(account: Account, name: str, subscribed: bool) -> None:
    updated = Mailbox.objects.filter(account=account, name=normalise_folder_name(name)).update(subscribed=subscribed)
    if not updated:
        raise NotFound("no such folder")
