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
