"""Putting messages on the outbound queue: the relay's input, written in the sender's transaction.

Attempt tasks are sent with `transaction.on_commit`, so a task never runs before its rows exist; if the broker
cannot take the task, the row stays due and the relay's sweep sends it.
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Iterable, Sequence
from email import policy as email_policy
from email.parser import BytesHeaderParser

from django.conf import settings
from django.db import transaction

from mailboxes.actions.locks import action
from mailboxes.models import Domain, split_address
from mailboxes.recipients import DeliveryReport, RecipientStatus
from mailcore.dsn import UNASKED, Requests
from mailcore.fields import field_values
from relay import dkim
from relay.models import OutboundMessage, OutboundRecipient

log = logging.getLogger("mail.relay")

ATTEMPT_TASK = "relay.attempt"


def _send_attempt(message_id: int, domain: str, eta: datetime.datetime | None = None) -> None:
    from mailsite.celery import app  # the Celery app imports Django settings; only needed once committing

    try:
        app.send_task(ATTEMPT_TASK, args=[message_id, domain], eta=eta, queue=settings.MAILSITE_RELAY_QUEUE)
    except Exception:  # any broker failure: the committed row is due, and the sweep sends it
        log.warning("broker unavailable; message %s to %s waits for the sweep", message_id, domain, exc_info=True)


def schedule(pairs: Iterable[tuple[int, str]], eta: datetime.datetime | None = None) -> None:
    for message_id, domain in sorted(set(pairs)):
        transaction.on_commit(functools.partial(_send_attempt, message_id, domain, eta))


def _subject(raw: bytes) -> str:
    """The Subject, for the admin's queue list only: nothing is decided by it."""
    try:
        return str(BytesHeaderParser(policy=email_policy.default).parsebytes(raw)["subject"] or "")[:500]
    except (ValueError, IndexError, AttributeError):
        return ""


def _signing_domain(author_domain: str | None) -> Domain | None:
    if not author_domain:
        return None
    return Domain.objects.filter(name=author_domain, active=True).first()


def _tls_optional(raw: bytes, requests: Requests) -> bool:
    """RFC 8689 4: "TLS-Required: No" asks that the recipient domain's TLS policy (MTA-STS) not stop delivery;
    under REQUIRETLS the field is ignored."""
    return not requests.require_tls and any(value.lower() == b"no" for value in field_values(raw, b"TLS-Required"))


@action
def enqueue(
    raw: bytes, sender: str, recipients: Sequence[str], *, author_domain: str | None, requests: Requests = UNASKED
) -> OutboundMessage | None:
    """Queue `raw` for remote `recipients`; attempts start on commit.

    It is DKIM-signed for `author_domain` when that is one of our active domains. The caller passes the domain
    that submission authorised the author for (decided once, from one parse of From:), or None for mail we did
    not author (alias forwards, DSNs): the relay never reads the headers to decide whom it signs for.
    `requests` holds what the sender asked in the SMTP envelope (DSN, REQUIRETLS); the relay honours them.
    """
    unique = list(dict.fromkeys(rcpt.strip() for rcpt in recipients if rcpt.strip()))
    if not unique:
        return None
    domain = _signing_domain(author_domain)
    signed = dkim.sign(raw, domain) if domain is not None else raw
    message = OutboundMessage.objects.create(
        sender=sender,
        raw=signed,
        size=len(signed),
        subject=_subject(raw),
        dsn_ret=requests.ret,
        dsn_envid=requests.envid,
        require_tls=requests.require_tls,
        tls_optional=_tls_optional(raw, requests),
    )
    rows = [
        OutboundRecipient(
            message=message,
            address=rcpt,
            domain=split_address(rcpt)[1],
            dsn_notify=requests.notify.get(rcpt, ""),
            dsn_orcpt=requests.orcpt.get(rcpt, ""),
        )
        for rcpt in unique
    ]
    OutboundRecipient.objects.bulk_create(rows)
    schedule((message.pk, row.domain) for row in rows)
    return message


def pass_on(
    raw: bytes,
    sender: str,
    report: DeliveryReport,
    *,
    relay_remote: bool,
    author_domain: str | None,
    requests: Requests = UNASKED,
) -> None:
    """Queue what a delivery left for the relay: alias forwards (always, with the original envelope sender),
    and remote recipients when `relay_remote` (authenticated senders; the MX refuses them at RCPT)."""
    outbound = list(report.forward)
    if relay_remote:
        outbound.extend(
            rcpt for rcpt, status in report.results.items() if status is RecipientStatus.REMOTE and rcpt not in outbound
        )
    if outbound:
        enqueue(raw, sender, outbound, author_domain=author_domain, requests=requests)
