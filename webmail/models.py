"""What each user chooses for the webmail (the settings page). Mail itself lives in `mailboxes`."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.db import models

PAGE_SIZES = (25, 50, 100, 200)
UNDO_SEND_DELAYS = (0, 5, 10, 20, 30)


def valid_time_zone(name: str) -> bool:
    return name in zoneinfo.available_timezones()


class Preferences(models.Model):
    account = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="webmail_preferences"
    )
    signature = models.TextField(blank=True, max_length=4000, help_text="added below new messages and replies")
    # The rich editor's signature, cleaned like mail the user sends (webmail.sanitize.clean_outgoing).
    signature_html = models.TextField(blank=True, max_length=20000)
    # IANA name; empty until the browser reports its zone at the first sign-in (dates are shown in UTC until then).
    time_zone = models.CharField(max_length=64, blank=True)
    reading_pane = models.BooleanField(default=True, help_text="open messages beside the list, not in its place")
    page_size = models.PositiveSmallIntegerField(default=50, choices=[(n, str(n)) for n in PAGE_SIZES])
    # Send waits this long in the page, with an Undo button, before the message goes to the server.
    undo_send_seconds = models.PositiveSmallIntegerField(default=5, choices=[(n, f"{n} s") for n in UNDO_SEND_DELAYS])

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"webmail preferences of {self.account_id}"


class Contact(models.Model):
    """An entry of the user's address book: typed in, imported from a vCard, or added when the user wrote to it."""

    class Source(models.TextChoices):
        MANUAL = "manual", "added by the user"
        SENT = "sent", "written to"
        IMPORTED = "imported", "imported"

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200, blank=True)
    address = models.CharField(max_length=320)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "address"]
        constraints = [
            models.UniqueConstraint(
                "account", models.functions.Lower("address"), name="contact_unique_address_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


class ScheduledSend(models.Model):
    """A message the user chose to send later: it waits in Drafts, and this row says when it goes.

    The database is the queue of record: a periodic task sends what is due, and a broker task only wakes a worker
    at the second. Deleting the draft (or editing it, which replaces it) cancels the send.
    """

    class State(models.TextChoices):
        WAITING = "waiting", "waiting"
        FAILED = "failed", "not sent"  # the send-time checks refused it; `reason` says why

    message = models.OneToOneField("mailboxes.Message", on_delete=models.CASCADE, related_name="scheduled_send")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scheduled_sends")
    send_at = models.DateTimeField()
    # The message being answered (flagged \Answered once sent); not a foreign key: it may be gone by then.
    answers = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    reason = models.TextField(blank=True)
    # While a sender works on it: until when it owns it; a sender that dies leaves it to run out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["send_at"]
        indexes = [models.Index(fields=["state", "send_at"], name="scheduled_send_due")]

    def __str__(self) -> str:
        return f"message {self.message_id} at {self.send_at:%Y-%m-%d %H:%M} ({self.state})"
