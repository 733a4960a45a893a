"""What the relay reports of each attempt: a log line per recipient and the relay's metrics.

Lines read "relay delivered queue_id=... to=<...> ..." (a JSON object with these fields under
MAILSITE_LOG_FORMAT=json), with the queue id the SMTP listener gave the message, so one id follows a message from
its arrival to its delivery, deferral or bounce.
"""

from __future__ import annotations

import datetime
import logging

from mailboxes.actions.outbound import Claim, Recorded
from ops import metrics
from relay.policy import Outcome

log = logging.getLogger("mail.relay")


def attempted(claimed: Claim, recorded: list[Recorded], *, new_session: bool) -> None:
    if new_session:
        metrics.RELAY_SESSIONS.labels(claimed.domain).inc()
    for row in recorded:
        metrics.RELAY_RESULTS.labels(str(row.outcome), claimed.domain).inc()
        log.log(
            logging.WARNING if row.outcome is Outcome.BOUNCED else logging.INFO,
            "relay %s queue_id=%s relay_id=%s from=<%s> to=<%s> host=%s code=%s status=%s attempts=%d reply=%r",
            row.outcome,
            claimed.queue_id,
            claimed.message_id,
            claimed.sender,
            row.address,
            row.host or "-",
            row.code or "-",
            row.status,
            row.attempts,
            row.reply,
        )


def policy_mismatch(domain: str, host: str, mode: str) -> None:
    """An MX host outside the domain's MTA-STS policy: skipped under enforce, only reported under testing."""
    log.warning(
        "relay mta-sts mismatch domain=%s host=%s mode=%s action=%s",
        domain,
        host,
        mode,
        "skipped" if mode == "enforce" else "reported",
    )


def policy_tls_failure(domain: str, host: str, problem: str) -> None:
    """An MX host whose TLS would fail the domain's MTA-STS testing policy (enforce defers instead)."""
    log.warning("relay mta-sts tls domain=%s host=%s mode=testing action=reported problem=%r", domain, host, problem)


def destination_dead(destination: str, until: float) -> None:
    """No host of `destination` answered MAILSITE_RELAY_DEAD_AFTER attempts in a row: its mail waits, unsent."""
    metrics.RELAY_DEAD.labels(destination).inc()
    log.warning(
        "relay destination dead destination=%s until=%s",
        destination,
        datetime.datetime.fromtimestamp(until, datetime.UTC).isoformat(timespec="seconds"),
    )
