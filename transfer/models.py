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


class ImportJob(models.Model):
    """An IMAP import the webmail runs in the background (`transfer.tasks.import_imap`), with its progress.

    The remote password is kept only while the job runs, encrypted with a key derived from the site secret
    (`transfer.jobs`), and deleted when the run ends, whatever the outcome."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Stopped"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    mode = models.CharField(max_length=8, help_text="tls, starttls or plain")
    user = models.CharField(max_length=320)
    secret = models.TextField(blank=True, default="", help_text="The password, encrypted; empty once the run ended")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    folders_total = models.PositiveIntegerField(default=0)
    folders_done = models.PositiveIntegerField(default=0)
    folder = models.CharField(max_length=1000, blank=True, default="", help_text="The folder being imported")
    messages_total = models.PositiveIntegerField(default=0)
    messages_done = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, help_text="Local folder -> messages stored by this run")
    already = models.PositiveIntegerField(default=0, help_text="Found imported by an earlier run")
    skipped = models.JSONField(default=list, help_text="[where, reason] of each thing not imported")
    error = models.TextField(blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-created"], name="import_job_latest")]
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=models.Q(state__in=["queued", "running"]), name="import_job_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port} {self.state}"
