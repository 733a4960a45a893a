"""The relay's writers of the outbound queue: claim and record attempts, hold, release, delete, purge.

Attempts are idempotent per recipient: an attempt first claims its recipients (a token and a deadline), and
only recipients still open and unclaimed can be claimed, so a delivered recipient is never sent again. Outbound
rows come last in the store's lock order: an action that may put a DSN in a local sender's Inbox locks that
Inbox and account first.
"""

from __future__ import annotations

import datetime
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from mailboxes import changes
from mailboxes.actions.delivery import deliver
from mailboxes.actions.locks import action, lock, lock_outbound
from mailboxes.actions.queueing import enqueue, schedule
from mailboxes.models import Mailbox, Role
from mailboxes.recipients import DeliveryReport, RecipientStatus, expansion
from mailcore.dsn import UNASKED, RecipientReport, Requests, build_dsn, notifies
from relay.deliver import Reply
from relay.models import OPEN_STATES, Attempt, MtaStsPolicy, OutboundMessage, OutboundRecipient, State
from relay.policy import Outcome, RetryPolicy, enhanced_status, outcome_for_code

log = logging.getLogger("mail.relay")


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        schedule=settings.MAILSITE_RELAY_RETRY_SCHEDULE,
        max_age=settings.MAILSITE_RELAY_MAX_AGE,
        delay_warning=settings.MAILSITE_RELAY_DELAY_WARNING,
    )


# --- Attempts -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    message_id: int
    domain: str
    token: str
    sender: str
    raw: bytes
    recipients: list[str]
    started: datetime.datetime
    queue_id: str  # the id our SMTP listener gave the message (in its Received field), to follow it in logs
    requests: Requests = UNASKED  # the sender's DSN and REQUIRETLS parameters, passed on (RFC 3461 5.2)
    tls_optional: bool = False  # "TLS-Required: No" (RFC 8689 4)


@dataclass(frozen=True)
class Recorded:
    """What an attempt came to for one recipient, once stored."""

    address: str
    outcome: Outcome
    host: str
    code: int | None
    reply: str
    status: str
    attempts: int


def _due(now: datetime.datetime) -> Q:
    return Q(state__in=OPEN_STATES, next_attempt__lte=now) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def next_due(domain: str) -> int | None:
    """The oldest message with due, unclaimed recipients at `domain` (a read)."""
    due = OutboundRecipient.objects.filter(_due(timezone.now()), domain=domain).order_by("message_id")
    return due.values_list("message_id", flat=True).first()


def is_due(message_id: int, domain: str) -> bool:
    """Whether this message has due, unclaimed recipients at this domain (a read, before taking a session slot)."""
    return OutboundRecipient.objects.filter(_due(timezone.now()), message_id=message_id, domain=domain).exists()


@action
def claim(message_id: int, domain: str) -> Claim | None:
    """Take the due, unclaimed recipients of this message at this domain for one attempt (None: nothing to do)."""
    now = timezone.now()
    rows = lock_outbound(
        OutboundRecipient.objects.filter(_due(now), message_id=message_id, domain=domain), skip_locked=True
    )
    if not rows:
        return None
    token = secrets.token_hex(16)
    until = now + datetime.timedelta(seconds=settings.MAILSITE_RELAY_CLAIM_TIMEOUT)
    OutboundRecipient.objects.filter(pk__in=[row.pk for row in rows]).update(claim=token, claimed_until=until)
    message = OutboundMessage.objects.only("sender", "raw", "dsn_ret", "dsn_envid", "require_tls", "tls_optional").get(
        pk=message_id
    )
    raw = bytes(message.raw)
    recipients = [r.address for r in rows]
    requests = Requests(
        ret=message.dsn_ret,
        envid=message.dsn_envid,
        require_tls=message.require_tls,
        notify={r.address: r.dsn_notify for r in rows if r.dsn_notify},
        orcpt={r.address: r.dsn_orcpt for r in rows if r.dsn_orcpt},
    )
    queue_id = queue_id_of(raw, message_id)
    return Claim(
        message_id, domain, token, message.sender, raw, recipients, now, queue_id, requests, message.tls_optional
    )


def claim_next(
    domain: str, candidates: int = 20, *, require_tls: bool = False, tls_optional: bool = False
) -> Claim | None:
    """Claim the oldest message with due, unclaimed recipients at `domain` (None: nothing to do), for a session
    already open to it. Each claim is its own transaction; a message another worker took is passed over. Only
    messages with these TLS requirements (RFC 8689) are taken: the session's TLS was chosen for them."""
    now = timezone.now()
    due = OutboundRecipient.objects.filter(
        _due(now), domain=domain, message__require_tls=require_tls, message__tls_optional=tls_optional
    ).order_by("message_id")
    for message_id in dict.fromkeys(due.values_list("message_id", flat=True)[:candidates]):
        claimed = claim(message_id, domain)
        if claimed is not None:
            return claimed
    return None


_OUR_QUEUE_ID = re.compile(rb"\(Mailsite\)[^;]*? id ([0-9A-F]{12})\b")


def queue_id_of(raw: bytes, message_id: int) -> str:
    """The queue id our SMTP listener wrote in the top Received field, or the outbound row's own ("R" and its
    number) for mail that did not come in over SMTP (webmail, DSNs, Sieve). For log lines only."""
    header = raw.split(b"\r\n\r\n", 1)[0]
    received = re.search(rb"^Received:.*?(?=\r\n[^ \t]|\Z)", header, re.MULTILINE | re.DOTALL | re.IGNORECASE)
    found = _OUR_QUEUE_ID.search(received.group(0)) if received else None
    return found.group(1).decode() if found else f"R{message_id}"


def _status_for(reply: Reply, route_status: str) -> str:
    if reply.code is None:
        # No SMTP reply: the DNS status the route gave, or "no answer from host" (RFC 3463 4.4.1).
        return route_status or "4.4.1"
    return enhanced_status(reply.code, reply.text)


def _report(row: OutboundRecipient, action: str, now: datetime.datetime) -> RecipientReport:
    return RecipientReport(
        recipient=row.address,
        action=action,
        status=row.status,
        diagnostic=(f"{row.last_code} {row.last_reply}" if row.last_code else row.last_reply),
        smtp_reply=row.last_code is not None,
        remote_mta=row.last_host,
        last_attempt=now,
        original_recipient=row.dsn_orcpt,
    )


def _notify_sender(
    message: OutboundMessage, reports: list[RecipientReport], *, will_retry_until: datetime.datetime | None = None
) -> None:
    """Put a DSN in the sender's Inbox (or queue it to a remote sender). Never for a bounce (null sender).

    It carries the sender's ENVID and returns what RET asked for (RFC 3461 4.3, 4.4); for a REQUIRETLS message
    only the headers, and a DSN queued to a remote sender requires TLS in turn (RFC 8689 5)."""
    if not reports or not message.sender:
        return
    now = timezone.now()
    dsn = build_dsn(
        reporting_mta=settings.MAILSITE_HOSTNAME,
        to=message.sender,
        original=bytes(message.raw),
        recipients=reports,
        arrival=message.created,
        now=now,
        will_retry_until=will_retry_until,
        ret="HDRS" if message.require_tls else message.dsn_ret,
        envid=message.dsn_envid,
    )
    report: DeliveryReport = deliver(dsn, "", [message.sender])
    if report.results.get(message.sender) is RecipientStatus.REMOTE:
        enqueue(dsn, "", [message.sender], author_domain=None, requests=Requests(require_tls=message.require_tls))
    elif not report.message_ids:
        log.warning("DSN for message %s: sender %s cannot receive it (%s)", message.pk, message.sender, report.results)


def _lock_senders(senders: Sequence[str]) -> None:
    """Lock the Inboxes and accounts of local senders who may get a DSN, before any queue row."""
    accounts = {pk for sender in senders if sender for pk in expansion(sender).accounts}
    lock(inboxes_of=accounts, accounts=accounts)


def _announce(sender: str) -> None:
    """Tell a local sender's open pages that a sent message's delivery changed: the change hub carries their Sent
    folder, and the webmail fetches the delivery state of the Sent message shown (sent on commit)."""
    accounts = expansion(sender).accounts if sender else ()
    changes.notify_many(Mailbox.objects.filter(account_id__in=accounts, role=Role.SENT).values_list("account_id", "id"))


@action
def record(
    claimed: Claim,
    replies: Mapping[str, Reply],
    *,
    no_reply: Outcome = Outcome.DEFERRED,
    route_status: str = "",
    not_before: datetime.datetime | None = None,
) -> list[Recorded]:
    """Store what an attempt got for each claimed recipient; bounce, defer or finish each one.

    A recipient without an SMTP reply gets the `no_reply` outcome: deferred for connection failures, or what
    DNS decided (bounced for NXDOMAIN and null MX, deferred for SERVFAIL) with its `route_status`. A deferred
    recipient is not retried before `not_before` (a dead destination's end).
    """
    now = timezone.now()
    policy = retry_policy()
    message = OutboundMessage.objects.get(pk=claimed.message_id)
    _lock_senders([message.sender])
    rows = lock_outbound(
        OutboundRecipient.objects.filter(message_id=claimed.message_id, claim=claimed.token, address__in=list(replies))
    )
    bounced: list[RecipientReport] = []  # failures and successes (RFC 3461 4.1 NOTIFY says which)
    delayed: list[RecipientReport] = []
    retry_at: datetime.datetime | None = None
    recorded: list[Recorded] = []
    for row in rows:
        reply = replies[row.address]
        outcome = no_reply if reply.code is None else outcome_for_code(reply.code)
        row.attempts += 1
        row.last_host, row.last_code, row.last_reply = reply.host, reply.code, reply.text[:2000]
        row.status = _status_for(reply, route_status)
        row.claim, row.claimed_until, row.updated = "", None, now
        Attempt.objects.create(
            recipient=row,
            started=claimed.started,
            finished=now,
            host=reply.host,
            code=reply.code,
            reply=reply.text[:2000],
            outcome=outcome,
        )
        if outcome is Outcome.DEFERRED and policy.gives_up(message.created, now):
            outcome = Outcome.BOUNCED
            row.status = "5.4.7"  # RFC 3463: delivery time expired
        if outcome is Outcome.DELIVERED:
            row.state = State.DELIVERED
            if not reply.dsn_passed and notifies(row.dsn_notify, "SUCCESS"):
                # RFC 3461 5.2.2: the next hop took the message but not our NOTIFY, so the notice is ours.
                bounced.append(_report(row, "relayed", now))
        elif outcome is Outcome.BOUNCED:
            row.state = State.BOUNCED
            if notifies(row.dsn_notify, "FAILURE"):
                bounced.append(_report(row, "failed", now))
        else:
            if row.state != State.HELD:  # held while this attempt ran: it stays held
                row.state = State.DEFERRED
            row.next_attempt = max(policy.next_attempt(now, row.attempts), not_before or now)
            retry_at = min(retry_at or row.next_attempt, row.next_attempt)
            if policy.warns_delay(message.created, now, row.delay_warned):
                row.delay_warned = True
                if notifies(row.dsn_notify, "DELAY"):
                    delayed.append(_report(row, "delayed", now))
        row.save()
        recorded.append(
            Recorded(row.address, outcome, row.last_host, row.last_code, row.last_reply, row.status, row.attempts)
        )
    _notify_sender(message, bounced)
    expires = message.created + datetime.timedelta(seconds=policy.max_age)
    _notify_sender(message, delayed, will_retry_until=expires)
    _announce(message.sender)
    if retry_at is not None:
        schedule([(claimed.message_id, claimed.domain)], eta=retry_at)
    return recorded


def due_work(grace: float) -> list[tuple[int, str]]:
    """(message, domain) pairs whose recipients are overdue by `grace` seconds: their task went missing."""
    now = timezone.now()
    overdue = _due(now) & Q(next_attempt__lte=now - datetime.timedelta(seconds=grace))
    return list(
        OutboundRecipient.objects.filter(overdue)
        .values_list("message_id", "domain")
        .distinct()
        .order_by("message_id", "domain")[: settings.MAILSITE_RELAY_SWEEP_BATCH]
    )


# --- MTA-STS -------------------------------------------------------------------------------------------------------


@action
def remember_policy(
    domain: str, policy_id: str, mode: str, mx: list[str], max_age: int, expires: datetime.datetime
) -> None:
    """Cache a recipient domain's freshly fetched MTA-STS policy (RFC 8461 5.1), replacing the one before."""
    MtaStsPolicy.objects.update_or_create(
        domain=domain,
        defaults={
            "policy_id": policy_id,
            "mode": mode,
            "mx": mx,
            "max_age": max_age,
            "fetched": timezone.now(),
            "expires": expires,
        },
    )


@action
def forget_policies(policy_ids: Sequence[int]) -> int:
    """Drop cached MTA-STS policies, so the next session to each domain fetches its policy again."""
    return MtaStsPolicy.objects.filter(pk__in=policy_ids).delete()[0]


# --- Administration -----------------------------------------------------------------------------------------------


@action
def retry_now(recipient_ids: Sequence[int]) -> int:
    """Make open recipients due at once (held ones stay held until released)."""
    rows = OutboundRecipient.objects.filter(pk__in=recipient_ids, state__in=OPEN_STATES)
    pairs = list(rows.values_list("message_id", "domain"))
    count = rows.update(next_attempt=timezone.now())
    schedule(pairs)
    return count


@action
def flush_domain(domain: str, *, subdomains: bool = False) -> int:
    """ETRN (RFC 1985): make the open recipients at `domain` (and its subdomains) due now and send their tasks;
    returns how many messages wait for it. Held recipients stay held."""
    where = Q(domain=domain) | (Q(domain__endswith="." + domain) if subdomains else Q())
    rows = OutboundRecipient.objects.filter(where, state__in=OPEN_STATES)
    pairs = list(rows.values_list("message_id", "domain"))
    rows.filter(next_attempt__gt=timezone.now()).update(next_attempt=timezone.now())
    schedule(pairs)
    return len({message_id for message_id, _ in pairs})


@action
def hold(recipient_ids: Sequence[int]) -> int:
    return OutboundRecipient.objects.filter(pk__in=recipient_ids, state__in=OPEN_STATES).update(state=State.HELD)


@action
def release(recipient_ids: Sequence[int]) -> int:
    rows = OutboundRecipient.objects.filter(pk__in=recipient_ids, state=State.HELD)
    pairs = list(rows.values_list("message_id", "domain"))
    count = rows.update(state=State.DEFERRED, next_attempt=timezone.now())
    schedule(pairs)
    return count


@action
def delete(recipient_ids: Sequence[int]) -> int:
    """Remove recipients from the queue; those not yet delivered or bounced are bounced to the sender."""
    now = timezone.now()
    _lock_senders(
        list(OutboundMessage.objects.filter(recipients__pk__in=recipient_ids).values_list("sender", flat=True))
    )
    rows = lock_outbound(OutboundRecipient.objects.filter(pk__in=recipient_ids))
    by_message: dict[int, list[RecipientReport]] = {}
    for row in rows:
        if row.state in (State.DELIVERED, State.BOUNCED):
            continue
        last = f" (last reply: {row.last_code or ''} {row.last_reply})" if row.last_reply else ""
        row.status, row.last_code = "5.0.0", None
        row.last_reply = "deleted from the queue by the administrator" + last
        if notifies(row.dsn_notify, "FAILURE"):
            by_message.setdefault(row.message_id, []).append(_report(row, "failed", now))
    for message in OutboundMessage.objects.filter(pk__in=by_message):
        _notify_sender(message, by_message[message.pk])
    OutboundRecipient.objects.filter(pk__in=[row.pk for row in rows]).delete()
    OutboundMessage.objects.filter(pk__in={row.message_id for row in rows}, recipients__isnull=True).delete()
    return len(rows)


@action
def purge(keep: float) -> int:
    """Drop delivered and bounced recipients (with their attempts) finished more than `keep` seconds ago, and
    messages left with no recipient; returns how many recipients went. Open recipients are never purged."""
    before = timezone.now() - datetime.timedelta(seconds=keep)
    done = OutboundRecipient.objects.filter(state__in=[State.DELIVERED, State.BOUNCED], updated__lt=before)
    ids = list(done.values_list("id", flat=True)[: settings.MAILSITE_RELAY_SWEEP_BATCH])
    if not ids:
        return 0
    Attempt.objects.filter(recipient_id__in=ids).delete()
    messages = set(OutboundRecipient.objects.filter(pk__in=ids).values_list("message_id", flat=True))
    OutboundRecipient.objects.filter(pk__in=ids).delete()
    OutboundMessage.objects.filter(pk__in=messages, recipients__isnull=True).delete()
    return len(ids)
