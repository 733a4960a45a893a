"""What an IMAP import has brought in, so a resumed import fetches each remote message once."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from mailboxes.models import Account, Message


class ImportedMessage(models.Model):
    """One remote message imported, keyed by its folder's UIDVALIDITY and its UID (RFC 3501 2.3.1.1: the pair
    names one message for ever). Written in the transaction that stores the message, by
    `mailboxes.actions.importing`; kept when the local copy is deleted, so a later resume does not bring it back."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=400, help_text="imap://user@host:port")
    folder = models.CharField(max_length=1000, help_text="The remote folder's name")
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "source", "folder", "uidvalidity", "uid"], name="imported_message_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.folder} {self.uidvalidity}/{self.uid}"
