"""The built-in junk filter's statistics: per account, trained only by that account's user."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class JunkToken(models.Model):
    """How many of an account's trained spam and ham messages contained a token (a hashed word)."""

    account = models.ForeignKey("mailboxes.Account", on_delete=models.CASCADE, related_name="+")
    token = models.BigIntegerField()  # 64-bit BLAKE2b of the token: the words themselves are not kept
    spam = models.IntegerField(default=0)
    ham = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "token"], name="junktoken_account_token")]

    def __str__(self) -> str:
        return f"token {self.token:x}: spam {self.spam}, ham {self.ham}"


class JunkTraining(models.Model):
    """One row per message an account trained, so training twice is a no-op and a change of mind relearns."""

    account = models.ForeignKey("mailboxes.Account", on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64)  # SHA-256 of the message's bytes
    spam = models.BooleanField()
    trained = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "digest"], name="junktraining_account_digest")]
        indexes = [models.Index(fields=["account", "spam"], name="junktraining_account_class")]

    def __str__(self) -> str:
        return f"{self.digest[:12]} as {'spam' if self.spam else 'ham'}"


class SenderRule(models.Model):
    """An account's own allow or block list entry: an address (user@example.net) or a domain (example.net,
    which covers its subdomains). Blocked senders go to Junk; allowed ones never do by a junk engine's verdict
    (a DMARC refusal at the MX is for every recipient and still applies)."""

    account = models.ForeignKey("mailboxes.Account", on_delete=models.CASCADE, related_name="+")
    sender = models.CharField(max_length=320, help_text="user@example.net, or example.net for a whole domain")
    allow = models.BooleanField(help_text="Allowed (never junk) rather than blocked (always junk)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "sender"], name="senderrule_account_sender")]

    def __str__(self) -> str:
        return f"{'allow' if self.allow else 'block'} {self.sender}"

    def save(self, *args, **kwargs) -> None:
        self.sender = self.sender.strip().lower().rstrip(".")
        super().save(*args, **kwargs)


class MxTally(models.Model):
    """What the MX did with mail for one of our domains on one day (UTC), for the admin."""

    domain = models.CharField(max_length=253)
    day = models.DateField()
    delivered = models.IntegerField(default=0)
    junked = models.IntegerField(default=0)
    refused = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["domain", "day"], name="mxtally_domain_day")]
        ordering = ["-day", "domain"]
        verbose_name = "MX tally"

    def __str__(self) -> str:
        return f"{self.domain} {self.day}"
