"""Send later: a message kept in Drafts with the time it goes, sent then through the same action as Send.

The `ScheduledSend` rows are the queue of record. A periodic task (`webmail.send_due`, every
MAILSITE_SEND_LATER_INTERVAL) sends whatever is due, so nothing waits on the broker: a task with an ETA only
wakes a worker at the chosen second. At send time the message is read back from the draft and goes through
every check Send makes (recipients, size, the author's address, the recipients' quotas); if one refuses, the
draft stays and the Scheduled page says why.

Two senders never send one message twice: a sender first claims the row (one conditional UPDATE), and the send
deletes the draft, which deletes the row, in the send's own transaction.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailboxes import actions
from mailboxes.models import Message, Role
from webmail import address_book, compose, drafts
from webmail.forms import ComposeForm
from webmail.models import ScheduledSend

log = logging.getLogger("mail.webmail")

SEND_TASK = "webmail.send_scheduled"
# Broker ETAs are kept only for sends this close: Redis hands an unacknowledged task to another worker after its
# visibility timeout (an hour by default), and later sends are woken by the periodic task anyway.
WAKE_HORIZON = datetime.timedelta(minutes=50)
# A sender that dies mid-send leaves its claim to run out; then the message is tried again.
CLAIM_SECONDS = 600
BATCH = 100  # rows one run of the periodic task sends at most; the next run continues


def problem_with(when: datetime.datetime | None) -> str | None:
    """Why the chosen time cannot be used (the form already refused times that do not exist in the zone)."""
    if when is None:
        return "Choose when to send it."
    if when <= timezone.now():
        return "Choose a time in the future."
    return None


def _wake(entry_id: int, when: datetime.datetime) -> None:
    from mailsite.celery import app  # the Celery app imports Django settings; only needed once committing

    try:
        app.send_task(SEND_TASK, args=[entry_id], eta=when, queue=settings.MAILSITE_RELAY_QUEUE)
    except Exception:  # any broker failure: the row is due at its time, and the periodic task sends it
        log.warning("broker unavailable; scheduled message %s waits for the periodic task", entry_id, exc_info=True)


def _wake_on_commit(entry: ScheduledSend) -> None:
    if entry.send_at - timezone.now() <= WAKE_HORIZON:
        transaction.on_commit(lambda: _wake(entry.pk, entry.send_at))


def schedule(
    outgoing: compose.Outgoing, when: datetime.datetime, *, previous: Message | None, answers: Message | None
) -> ScheduledSend:
    """Keep the message in Drafts (replacing `previous`) and note when it goes: one transaction."""
    with transaction.atomic():
        draft = compose.save_draft(outgoing, previous=previous)
        entry = ScheduledSend.objects.create(
            message=draft,
            account=outgoing.sender,
            send_at=when,
            answers=answers.pk if answers is not None else None,
        )
        _wake_on_commit(entry)
    return entry


def cancel(account_id: int, entry_id: int) -> Message | None:
    """The message stays in Drafts, no longer scheduled; returns the draft (None if there was nothing to cancel)."""
    entry = ScheduledSend.objects.filter(account_id=account_id, pk=entry_id).select_related("message").first()
    if entry is None:
        return None
    ScheduledSend.objects.filter(pk=entry.pk).delete()
    return entry.message


def _claim(entry_id: int) -> bool:
    """Take the row for one send attempt if it is waiting, due and nobody else holds it (one statement)."""
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    claimed_until = now + datetime.timedelta(seconds=CLAIM_SECONDS)
    due = ScheduledSend.objects.filter(free, pk=entry_id, state=ScheduledSend.State.WAITING, send_at__lte=now)
    return due.update(claimed_until=claimed_until) == 1


def _refuse(entry: ScheduledSend, reason: str) -> None:
    log.info("scheduled message %s not sent: %s", entry.pk, reason)
    failed = ScheduledSend.State.FAILED
    ScheduledSend.objects.filter(pk=entry.pk).update(state=failed, reason=reason, claimed_until=None)


def _outgoing(entry: ScheduledSend, draft: Message) -> compose.Outgoing | str:
    """The message read back from its draft, as Send would get it from the form, or why it cannot be sent."""
    account = entry.account
    if not (account.is_active and account.domain.active):
        return "your account may not send mail any more."
    form = ComposeForm(drafts.fields(draft), sending=True)
    if not form.is_valid():
        problems = (str(error) for errors in form.errors.values() for error in errors)
        return " ".join(problems)
    return drafts.outgoing(account, form.cleaned_data, drafts.attachment_data(drafts.kept_of(draft), []))


def send_one(entry_id: int) -> bool:
    """Send one scheduled message if it is due; True if it went (idempotent: a second call finds nothing)."""
    if not _claim(entry_id):
        return False
    entry = ScheduledSend.objects.select_related("account__domain", "message__body", "message__mailbox").get(
        pk=entry_id
    )
    draft = entry.message
    if draft.mailbox.role != Role.DRAFTS:
        _refuse(entry, "the message was moved out of Drafts.")
        return False
    outgoing = _outgoing(entry, draft)
    if isinstance(outgoing, str):
        _refuse(entry, outgoing)
        return False
    too_big = compose.too_big(outgoing)
    if too_big:
        _refuse(entry, too_big)
        return False
    answered = Message.objects.filter(account=entry.account, pk=entry.answers).first() if entry.answers else None
    try:
        # Deleting the draft deletes this row in the same transaction: sent once, or not at all.
        compose.send(outgoing, replying_to=answered, draft=draft)
    except actions.NotSent as exc:
        _refuse(entry, f"The message was not sent to anyone. {compose.refusals(exc.refused)}.")
        return False
    except actions.ServiceError as exc:
        _refuse(entry, f"The message was not sent: {exc}")
        return False
    address_book.remember_recipients(entry.account, [*outgoing.to, *outgoing.cc, *outgoing.bcc])
    log.info("scheduled message %s sent", entry_id)
    return True


def send_due() -> int:
    """Send what is due (a batch) and wake workers at the second for what falls due before the next run;
    returns how many were sent."""
    now = timezone.now()
    waiting = ScheduledSend.objects.filter(state=ScheduledSend.State.WAITING)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = list(waiting.filter(free, send_at__lte=now).values_list("pk", flat=True)[:BATCH])
    soon = now + datetime.timedelta(seconds=settings.MAILSITE_SEND_LATER_INTERVAL)
    for pk, when in waiting.filter(send_at__gt=now, send_at__lte=soon).values_list("pk", "send_at"):
        _wake(pk, when)
    return sum(send_one(pk) for pk in due)
