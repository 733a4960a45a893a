"""The outbound queue (the source of truth; Celery only executes attempts) and the per-domain DKIM keys.

Only `relay.queue` writes the queue tables (and `relay.dkim` the keys).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from mailboxes.models import Domain


class State(models.TextChoices):
    QUEUED = "queued", "queued"  # not tried yet
    DEFERRED = "deferred", "deferred"  # tried, failed temporarily, waiting for `next_attempt`
    DELIVERED = "delivered", "delivered"
    BOUNCED = "bounced", "bounced"  # failed permanently or given up; the sender got a DSN (unless null sender)
    HELD = "held", "held"  # an administrator stopped it; released back to deferred


OPEN_STATES = (State.QUEUED, State.DEFERRED)


class OutboundMessage(models.Model):
    """One message to relay: the envelope sender and the exact bytes sent (DKIM-signed when ours)."""

    sender = models.CharField(max_length=320, blank=True, help_text="Envelope sender; empty for bounces")
    raw = models.BinaryField()
    size = models.BigIntegerField()
    subject = models.TextField(blank=True, default="")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    # What the sender asked of this message's notices and its transport (RFC 3461 4.3, 4.4; RFC 8689 3, 4).
    dsn_ret = models.CharField(
        max_length=4, blank=True, default="", help_text="RFC 3461 RET: FULL or HDRS; empty when not given"
    )
    dsn_envid = models.CharField(max_length=100, blank=True, default="", help_text="RFC 3461 ENVID, xtext-decoded")
    require_tls = models.BooleanField(default=False, help_text="RFC 8689 REQUIRETLS: verified TLS on every hop")
    tls_optional = models.BooleanField(
        default=False, help_text="RFC 8689 4 'TLS-Required: No': the recipient domain's TLS policy is not enforced"
    )

    class Meta:
        verbose_name = "outbound message"

    def __str__(self) -> str:
        return f"{self.pk} from <{self.sender}>: {self.subject[:60]}"


class OutboundRecipient(models.Model):
    """One recipient of an outbound message: its delivery state and the last reply it got."""

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="recipients")
    address = models.CharField(max_length=320)
    domain = models.CharField(max_length=253)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt = models.DateTimeField(default=timezone.now)
    # While an attempt runs: until when the worker that claimed it owns it. A worker that dies leaves the
    # claim to run out, after which the sweep hands the recipient to another worker.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, default="", help_text="Token of the attempt that owns it")
    last_host = models.CharField(max_length=253, blank=True, default="")
    last_code = models.IntegerField(null=True, blank=True)
    last_reply = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, blank=True, default="", help_text="RFC 3463 status of the last reply")
    delay_warned = models.BooleanField(default=False)
    # RFC 3461 4.1, 4.2: NEVER or some of SUCCESS,FAILURE,DELAY (empty: not given, so FAILURE,DELAY), and the
    # original recipient as "addr-type;address", xtext-decoded.
    dsn_notify = models.CharField(max_length=32, blank=True, default="")
    dsn_orcpt = models.CharField(max_length=500, blank=True, default="")
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["message", "address"]
        verbose_name = "queued recipient"
        constraints = [models.UniqueConstraint(fields=["message", "address"], name="outbound_unique_recipient")]
        indexes = [models.Index(fields=["state", "next_attempt"], name="outbound_due")]

    def __str__(self) -> str:
        return f"{self.address} ({self.state})"


class Attempt(models.Model):
    """What one delivery attempt got for one recipient."""

    recipient = models.ForeignKey(OutboundRecipient, on_delete=models.CASCADE, related_name="attempt_log")
    started = models.DateTimeField()
    finished = models.DateTimeField(default=timezone.now)
    host = models.CharField(max_length=253, blank=True, default="", help_text="MX host that replied")
    code = models.IntegerField(null=True, blank=True, help_text="Empty when there was no SMTP reply")
    reply = models.TextField(blank=True, default="")
    outcome = models.CharField(max_length=16)

    class Meta:
        ordering = ["recipient", "started"]

    def __str__(self) -> str:
        return f"{self.recipient.address} via {self.host or '-'}: {self.code or ''} {self.reply[:60]}"


class DkimKey(models.Model):
    """The RSA key a local domain signs outbound mail with (RFC 6376), generated on first use."""

    domain = models.OneToOneField(Domain, on_delete=models.CASCADE, related_name="dkim_key")
    selector = models.CharField(max_length=63)
    private_key = models.TextField(help_text="PEM (PKCS#8)")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "DKIM key"

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"


class MtaStsPolicy(models.Model):
    """A recipient domain's MTA-STS policy (RFC 8461 3.2) as last fetched, cached until `expires` (RFC 8461 5.1),
    so a policy keeps applying while its host is unreachable or its TXT record has been removed."""

    domain = models.CharField(max_length=253, unique=True)
    policy_id = models.CharField(max_length=32, help_text="The id of the _mta-sts TXT record it was fetched under")
    mode = models.CharField(max_length=8)  # enforce, testing or none
    mx = models.JSONField(default=list, help_text="MX host patterns, e.g. mail.example.net or *.example.net")
    max_age = models.PositiveIntegerField()
    fetched = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()

    class Meta:
        verbose_name = "MTA-STS policy"
        verbose_name_plural = "MTA-STS policies"

    def __str__(self) -> str:
        return f"{self.domain}: {self.mode}"
