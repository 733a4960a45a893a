"""Sieve scripts (several per account, at most one active), the admins' "before" scripts, and the vacation log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from mailboxes.models import Account, Domain


class SieveScript(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sieve_scripts")
    name = models.CharField(max_length=255)
    content = models.TextField()
    active = models.BooleanField(default=False)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account", "name"]
        verbose_name = "Sieve script"
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="sieve_script_unique_name"),
            models.UniqueConstraint(fields=["account"], condition=models.Q(active=True), name="sieve_one_active"),
        ]

    def __str__(self) -> str:
        return f"{self.account.address}: {self.name}{' (active)' if self.active else ''}"


class BeforeScript(models.Model):
    """An administrator's script, run before the user's: for every account (no domain) or one domain's."""

    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    content = models.TextField()
    enabled = models.BooleanField(default=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain", "name"]
        verbose_name = "admin Sieve script (run before the user's)"

    def __str__(self) -> str:
        return f"{self.name} ({self.domain.name if self.domain else 'all domains'})"


class VacationReply(models.Model):
    """Whom an account's vacation action answered, and until when it stays silent to them (RFC 5230 4.1)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    sender = models.CharField(max_length=320)  # lower case
    handle = models.CharField(max_length=64)  # SHA-256 of the :handle, or of the reply's text and subject
    sent = models.DateTimeField()
    quiet_until = models.DateTimeField()

    class Meta:
        verbose_name = "vacation reply sent"
        constraints = [
            models.UniqueConstraint(fields=["account", "sender", "handle"], name="sieve_vacation_once"),
        ]

    def __str__(self) -> str:
        return f"{self.sender} until {self.quiet_until:%Y-%m-%d %H:%M}"
