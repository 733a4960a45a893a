"""Celery tasks of the relay. They only execute: the queue rows in the database decide what is due."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from mailboxes.actions import outbound, queueing
from relay import deliver, mx
from relay.deliver import Reply


@shared_task(name=queueing.ATTEMPT_TASK, ignore_result=True)
def attempt(message_id: int, domain: str) -> None:
    """One delivery attempt for the due recipients of one message at one domain (a no-op if none is due)."""
    claimed = outbound.claim(message_id, domain)
    if claimed is None:
        return
    route = mx.route(domain)
    if route.outcome is not None:
        replies = {rcpt: Reply(None, route.reason) for rcpt in claimed.recipients}
        outbound.record(claimed, replies, no_reply=route.outcome, route_status=route.status)
        return
    replies = deliver.attempt(
        route.addresses,
        claimed.sender,
        claimed.recipients,
        claimed.raw,
        helo=settings.MAILSITE_HOSTNAME,
        port=settings.MAILSITE_RELAY_PORT,
        timeout=settings.MAILSITE_RELAY_TIMEOUT,
    )
    outbound.record(claimed, replies)


@shared_task(name="relay.sweep", ignore_result=True)
def sweep() -> int:
    """Re-send whatever is due but has no task (broker lost, worker killed mid-attempt), and drop finished mail
    kept longer than MAILSITE_RELAY_KEEP; returns how many tasks were sent."""
    work = outbound.due_work(settings.MAILSITE_RELAY_SWEEP_GRACE)
    for message_id, domain in work:
        attempt.apply_async((message_id, domain), queue=settings.MAILSITE_RELAY_QUEUE)
    outbound.purge(settings.MAILSITE_RELAY_KEEP)
    return len(work)
