"""Celery tasks of the relay. They only execute: the queue rows in the database decide what is due."""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

from django.conf import settings

from mailboxes.actions import outbound, queueing
from mailboxes.actions.outbound import Claim
from mailsite.celery import app
from relay import dead, deliver, events, mtasts, mx, routes, slots
from relay.deliver import Connection, Credentials, Reply, Tls
from relay.policy import Outcome


@app.task(name=queueing.ATTEMPT_TASK, ignore_result=True)
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


@dataclass(frozen=True)
class _Destination:
    """Where one domain's mail goes now: addresses to try in order over `port`, with `tls` and `credentials`;
    `key` names it for the dead-destination state."""

    key: str
    addresses: list[tuple[str, str]]
    port: int
    tls: Tls
    credentials: Credentials | None = None


def _without_session(
    claimed: Claim,
    reason: str,
    status: str,
    outcome: Outcome = Outcome.DEFERRED,
    not_before: datetime.datetime | None = None,
) -> None:
    """Record an attempt that opened no session: every claimed recipient gets `reason`."""
    replies = {rcpt: Reply(None, reason) for rcpt in claimed.recipients}
    recorded = outbound.record(claimed, replies, no_reply=outcome, route_status=status, not_before=not_before)
    events.attempted(claimed, recorded, new_session=False)


def _destination(claimed: Claim) -> _Destination | tuple[str, str, Outcome]:
    """The destination of the claimed mail's domain: its route (MAILSITE_RELAY_ROUTES) or its MX hosts under
    MTA-STS; or why there is none now, as (reason, status, outcome)."""
    ca_file = str(settings.MAILSITE_RELAY_CA_FILE) if settings.MAILSITE_RELAY_CA_FILE else None
    smarthost = routes.route_for(settings.MAILSITE_RELAY_ROUTES, claimed.domain)
    if smarthost is not None:
        found = mx.host_route(smarthost.host)
        if found.outcome is not None:
            return found.reason, found.status, found.outcome
        credentials = None
        if smarthost.credentials:
            try:
                credentials = Credentials(*routes.read_credentials(smarthost.credentials))
            except routes.CredentialsUnreadable as exc:
                # RFC 3463 4.3.5: the system is not configured right; the mail waits for the fix.
                return (
                    f"4.3.5 the login of the route to {smarthost.key} is unreadable: {exc}",
                    "4.3.5",
                    Outcome.DEFERRED,
                )
        tls = Tls(
            verify=smarthost.security != "none",
            ca_file=ca_file,
            implicit=smarthost.security == "tls",
            required_by=f"the route to {smarthost.key}",
        )
        return _Destination(smarthost.key, found.addresses, smarthost.port, tls, credentials)
    found = mx.route(claimed.domain)
    if found.outcome is not None:
        return found.reason, found.status, found.outcome
    addresses, tls = _apply_mta_sts(claimed.domain, found.addresses, ca_file, optional=claimed.tls_optional)
    if not addresses:
        return f"4.7.5 no MX host of {claimed.domain} matches its MTA-STS policy", "4.7.5", Outcome.DEFERRED
    return _Destination(claimed.domain, addresses, settings.MAILSITE_RELAY_PORT, tls)


def _session(claimed: Claim) -> None:
    """Deliver `claimed`, then the domain's next due messages over the same SMTP session while it lasts."""
    destination = _destination(claimed)
    if not isinstance(destination, _Destination):
        reason, status, outcome = destination
        _without_session(claimed, reason, status, outcome)
        return
    if claimed.requests.require_tls and not destination.tls.verify:
        # RFC 8689 5: only to an MX authenticated by an MTA-STS enforce policy (we have no DANE), or a route's
        # host with its certificate checked; else 5.7.30.
        reason = (
            f"5.7.30 REQUIRETLS: {claimed.domain} has no MTA-STS enforce policy to verify its MX hosts by"
            if destination.key == claimed.domain
            else f"5.7.30 REQUIRETLS: the route to {destination.key} does not use TLS"
        )
        replies = {rcpt: Reply(550, reason) for rcpt in claimed.recipients}
        recorded = outbound.record(claimed, replies)
        events.attempted(claimed, recorded, new_session=False)
        return
    until = dead.dead_until(destination.key)
    if until is not None:
        when = datetime.datetime.fromtimestamp(until, datetime.UTC)
        _without_session(
            claimed,
            f"4.4.1 {destination.key} is not answering: not tried until {when:%H:%M:%S} UTC",
            "4.4.1",
            not_before=when,
        )
        return
    connection: Connection | None = None
    current: Claim | None = claimed
    answered = False
    try:
        while current is not None:
            replies, after = deliver.attempt(
                destination.addresses,
                current.sender,
                current.recipients,
                current.raw,
                helo=settings.MAILSITE_HOSTNAME,
                port=destination.port,
                timeout=settings.MAILSITE_RELAY_TIMEOUT,
                tls=destination.tls,
                credentials=destination.credentials,
                reuse=connection,
                requests=current.requests,
            )
            # Recorded (delivered only on its 250) before the session takes anything else.
            recorded = outbound.record(current, replies)
            events.attempted(current, recorded, new_session=after is not None and after.transactions == 1)
            if not answered:
                # The destination's first attempt of this session says whether any host answers at all.
                answered = any(reply.code is not None for reply in replies.values())
                if answered:
                    dead.reached(destination.key)
                elif (until := dead.unreachable(destination.key)) is not None:
                    events.destination_dead(destination.key, until)
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
    domain: str, addresses: list[tuple[str, str]], ca_file: str | None, *, optional: bool = False
) -> tuple[list[tuple[str, str]], Tls]:
    """The MX addresses mail for `domain` may go to and how TLS is used (RFC 8461 5): under an enforce policy
    only MX hosts it names, over STARTTLS with a valid certificate; what a testing policy finds is only reported.
    A message marked "TLS-Required: No" (`optional`, RFC 8689 4) is sent as under a testing policy."""
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


@app.task(name="relay.sweep", ignore_result=True)
def sweep() -> int:
    """Re-send whatever is due but has no task (broker lost, worker killed mid-attempt), and drop finished mail
    kept longer than MAILSITE_RELAY_KEEP; returns how many tasks were sent."""
    work = outbound.due_work(settings.MAILSITE_RELAY_SWEEP_GRACE)
    for message_id, domain in work:
        attempt.apply_async((message_id, domain), queue=settings.MAILSITE_RELAY_QUEUE)
    outbound.purge(settings.MAILSITE_RELAY_KEEP)
    return len(work)
