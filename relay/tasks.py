"""Celery tasks of the relay. They only execute: the queue rows in the database decide what is due."""

from __future__ import annotations

import functools

from celery import shared_task
from django.conf import settings

from mailboxes.actions import outbound, queueing
from mailboxes.actions.outbound import Claim
from relay import deliver, events, mtasts, mx, slots
from relay.deliver import Connection, Reply, Tls


@shared_task(name=queueing.ATTEMPT_TASK, ignore_result=True)
def attempt(message_id: int, domain: str) -> None:
    """One delivery attempt for the due recipients of one message at one domain (a no-op if none is due).

    The session it opens then carries the domain's other due messages, one transaction each after RSET, until
    MAILSITE_RELAY_REUSE_MESSAGES or MAILSITE_RELAY_REUSE_TIME is reached or nothing more is due. It runs in one
    of the domain's session slots. When all are taken the task ends at once: the sessions holding them take the
    message in turn, as Postfix's queue manager feeds a busy destination, instead of every waiting message
    polling for a slot.
    """
    if not outbound.is_due(message_id, domain):
        return
    with slots.slot(domain) as held:
        if not held:
            return
        claimed = outbound.claim(message_id, domain)
        if claimed is not None:
            _session(claimed)
    # The slot is free again. Mail that is due and that no session took (the session reached its limits, or
    # the message arrived while every slot was taken) gets the next task.
    following = outbound.next_due(domain)
    if following is not None:
        attempt.apply_async((following, domain), queue=settings.MAILSITE_RELAY_QUEUE)


def _session(claimed: Claim) -> None:
    """Deliver `claimed`, then the domain's next due messages over the same SMTP session while it lasts."""
    route = mx.route(claimed.domain)
    if route.outcome is not None:
        replies = {rcpt: Reply(None, route.reason) for rcpt in claimed.recipients}
        recorded = outbound.record(claimed, replies, no_reply=route.outcome, route_status=route.status)
        events.attempted(claimed, recorded, new_session=False)
        return
    addresses, tls = _apply_mta_sts(claimed.domain, route.addresses, optional=claimed.tls_optional)
    if claimed.requests.require_tls and not tls.verify:
        # RFC 8689 5: only to an MX authenticated by an MTA-STS enforce policy (we have no DANE); else 5.7.30.
        reason = f"5.7.30 REQUIRETLS: {claimed.domain} has no MTA-STS enforce policy to verify its MX hosts by"
        replies = {rcpt: Reply(550, reason) for rcpt in claimed.recipients}
        recorded = outbound.record(claimed, replies)
        events.attempted(claimed, recorded, new_session=False)
        return
    if not addresses:
        reason = f"4.7.5 no MX host of {claimed.domain} matches its MTA-STS policy"
        replies = {rcpt: Reply(None, reason) for rcpt in claimed.recipients}
        recorded = outbound.record(claimed, replies, route_status="4.7.5")
        events.attempted(claimed, recorded, new_session=False)
        return
    connection: Connection | None = None
    current: Claim | None = claimed
    try:
        while current is not None:
            replies, after = deliver.attempt(
                addresses,
                current.sender,
                current.recipients,
                current.raw,
                helo=settings.MAILSITE_HOSTNAME,
                port=settings.MAILSITE_RELAY_PORT,
                timeout=settings.MAILSITE_RELAY_TIMEOUT,
                tls=tls,
                reuse=connection,
                requests=current.requests,
            )
            # Recorded (delivered only on its 250) before the session takes anything else.
            recorded = outbound.record(current, replies)
            events.attempted(current, recorded, new_session=after is not None and after.transactions == 1)
            connection = after
            if connection is None or not _reusable(connection):
                break
            # Only messages with the first one's TLS requirements: the session's TLS was chosen for them.
            current = outbound.claim_next(
                claimed.domain, require_tls=claimed.requests.require_tls, tls_optional=claimed.tls_optional
            )
    finally:
        if connection is not None:
            connection.close()


def _apply_mta_sts(
    domain: str, addresses: list[tuple[str, str]], *, optional: bool = False
) -> tuple[list[tuple[str, str]], Tls]:
    """The MX addresses mail for `domain` may go to and how TLS is used (RFC 8461 5): under an enforce policy
    only MX hosts it names, over STARTTLS with a valid certificate; what a testing policy finds is only reported.
    A message marked "TLS-Required: No" (`optional`, RFC 8689 4) is sent as under a testing policy."""
    ca_file = str(settings.MAILSITE_RELAY_CA_FILE) if settings.MAILSITE_RELAY_CA_FILE else None
    policy = mtasts.policy_for(domain) if settings.MAILSITE_RELAY_MTA_STS else None
    if policy is None:
        return addresses, Tls(ca_file=ca_file)
    outside = sorted({host for host, _ in addresses if not mtasts.mx_matches(host, policy.mx)})
    for host in outside:
        events.policy_mismatch(domain, host, policy.mode)
    if policy.mode == "testing" or optional:
        return addresses, Tls(ca_file=ca_file, report=functools.partial(events.policy_tls_failure, domain))
    return [(host, address) for host, address in addresses if host not in outside], Tls(verify=True, ca_file=ca_file)


def _reusable(connection: Connection) -> bool:
    return (
        connection.transactions < settings.MAILSITE_RELAY_REUSE_MESSAGES
        and connection.age() < settings.MAILSITE_RELAY_REUSE_TIME
    )


@shared_task(name="relay.sweep", ignore_result=True)
def sweep() -> int:
    """Re-send whatever is due but has no task (broker lost, worker killed mid-attempt), and drop finished mail
    kept longer than MAILSITE_RELAY_KEEP; returns how many tasks were sent."""
    work = outbound.due_work(settings.MAILSITE_RELAY_SWEEP_GRACE)
    for message_id, domain in work:
        attempt.apply_async((message_id, domain), queue=settings.MAILSITE_RELAY_QUEUE)
    outbound.purge(settings.MAILSITE_RELAY_KEEP)
    return len(work)
