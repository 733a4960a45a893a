"""Prometheus metrics, counted in every process and served together on `/metrics`.

prometheus-client's multiprocess mode: each process writes its counters to memory-mapped files named by its pid
in one directory per host, `<MAILSITE_METRICS_DIR>/<hostname>/` (the data dir is shared by every host, as the
certificate already needs). A scrape of any web process merges every host's files, so the listeners, web and
Celery processes of every host are seen in one place. Files are never wiped: a restarted process that gets an
old pid continues that file's counts, so every total only grows, as Prometheus expects of a counter. Gauges
that describe the store (the relay's queue) are read from the database at scrape time.

The environment variable prometheus-client reads must be set before it is first imported, so import it only
through this module.
"""

from __future__ import annotations

import glob
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db.models import Count

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.MAILSITE_METRICS_DIR / socket.gethostname()))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values  # noqa: E402
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

if values.ValueClass is values.MutexValue:  # imported before the variable was set: switch to the files anyway
    values.ValueClass = values.MultiProcessValue()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

CONNECTIONS = Counter("mailsite_connections", "Connections accepted, by listener", ["listener"])
CONNECTIONS_REFUSED = Counter(
    "mailsite_connections_refused",
    "Connections closed before the greeting, by listener and reason",
    ["listener", "reason"],
)
AUTH = Counter(
    "mailsite_auth",
    "Sign-ins by protocol (smtp, pop3, imap, sieve, web) and result (success, failure, throttled)",
    ["protocol", "result"],
)
COMMANDS = Counter(
    "mailsite_commands", "Commands by protocol (smtp, imap, pop3, sieve) and command", ["protocol", "command"]
)
IMAP_IDLE_SECONDS = Histogram(
    "mailsite_imap_idle_seconds",
    "IMAP IDLE commands ended and how long they lasted; the IDLE sessions open are"
    ' mailsite_commands_total{protocol="imap",command="IDLE"} minus this _count',
    buckets=(1, 10, 60, 300, 600, 1200, 1800, 3600),
)
SPAM_VERDICTS = Counter(
    "mailsite_spam_verdicts",
    "Messages scored at the MX, by engine (rspamd, builtin, none) and verdict (ham, junk, reject, unscored)",
    ["engine", "verdict"],
)
SMTP_MESSAGES = Counter(
    "mailsite_smtp_messages",
    "Messages at the end of DATA, by listener, result (accepted, refused) and reply code (e.g. 550 5.7.1)",
    ["listener", "result", "code"],
)
SESSION_SECONDS = Histogram(
    "mailsite_session_seconds",
    "Sessions by listener and how long they lasted (its _count is the number of sessions ended)",
    ["listener"],
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600),
)
SMTP_DELIVERY_SECONDS = Histogram(
    "mailsite_smtp_delivery_seconds",
    "From the end of DATA to the reply: checks, junk scoring and storing the message",
    ["listener"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

RELAY_RESULTS = Counter(
    "mailsite_relay_results",
    "Relay attempts per recipient, by result (delivered, deferred, bounced) and destination (recipient domain)",
    ["result", "destination"],
)
RELAY_DEAD = Counter(
    "mailsite_relay_dead_destinations",
    "Times a destination (recipient domain, or a route's [host]:port) was marked dead: no host answered",
    ["destination"],
)
RELAY_SESSIONS = Counter(
    "mailsite_relay_sessions",
    "SMTP sessions the relay opened that carried a message, by destination (recipient domain)",
    ["destination"],
)


def command_counter(protocol: str) -> Callable[[str], None]:
    """What a sans-I/O core calls with each command it carries out, counting it in mailsite_commands_total."""
    counters: dict[str, Counter] = {}

    def count(command: str) -> None:
        counter = counters.get(command)
        if counter is None:
            counter = counters[command] = COMMANDS.labels(protocol, command)
        counter.inc()

    return count


def reply_code(reply: str) -> str:
    """The basic and enhanced code of an SMTP reply ("550 5.7.1"), a label of few values."""
    words = reply.split(" ", 2)
    if len(words) >= 2 and words[1][:1].isdigit() and words[1].count(".") == 2:
        return f"{words[0][:3]} {words[1]}"
    return words[0][:3]


class _EveryHost:
    """The counters of every process of every host sharing the metrics directory."""

    def collect(self) -> Iterator[Metric]:
        files = glob.glob(str(settings.MAILSITE_METRICS_DIR / "*" / "*.db"))
        return iter(MultiProcessCollector.merge(files, accumulate=True))


class _Store:
    """What the database holds, read at scrape time (one grouped query each)."""

    def collect(self) -> Iterator[Metric]:
        from relay.models import Attempt, OutboundRecipient, State

        queue = GaugeMetricFamily("mailsite_relay_queue", "Outbound recipients by state", labels=["state"])
        counts = dict(OutboundRecipient.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
        for state in State.values:
            queue.add_metric([state], counts.get(state, 0))
        yield queue
        attempts = GaugeMetricFamily(
            "mailsite_relay_attempts",
            "Relay attempts by outcome, among those kept (MAILSITE_RELAY_KEEP purges older ones)",
            labels=["outcome"],
        )
        for outcome, number in (
            Attempt.objects.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n")
        ):
            attempts.add_metric([outcome], number)
        yield attempts


def exposition() -> bytes:
    """Every metric in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(_EveryHost())  # type: ignore[arg-type]  # a collector is anything with collect()
    registry.register(_Store())  # type: ignore[arg-type]
    return generate_latest(registry)
