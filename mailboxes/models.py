"""The mail store shared by every protocol and the webmail.

Only `mailboxes.actions` writes these tables; Django admin saves and deletes through them too.
Raw message bytes live in `MessageBody`, apart from `Message`, so list queries never load them; one body is
shared by every copy of a message (multi-recipient delivery, COPY).
"""

from __future__ import annotations

import secrets
import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from mailcore.idn import ascii_domain, unicode_domain


def split_address(address: str) -> tuple[str, str]:
    """(local part, domain): the local part lower-cased, the domain in its canonical A-label form."""
    local, _, domain = address.strip().rpartition("@")
    return local.lower(), ascii_domain(domain)


class Domain(models.Model):
    name = models.CharField(
        max_length=253, unique=True, help_text="e.g. example.com or müller.test; stored in A-label form"
    )
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return unicode_domain(self.name)

    def save(self, *args, **kwargs) -> None:
        self.name = self.name.strip().lower().rstrip(".")
        super().save(*args, **kwargs)


class AccountManager(BaseUserManager["Account"]):
    def create_user(self, address: str, password: str | None = None, **extra) -> Account:
        from mailboxes import actions  # the action creates the standard folders with the account

        return actions.create_account(address, password, **extra)

    def create_superuser(self, address: str, password: str | None = None, **extra) -> Account:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(address, password, **extra)


class Account(AbstractBaseUser, PermissionsMixin):
    """A mailbox owner. The login is the full address; staff accounts may also use Django admin."""

    address = models.CharField(max_length=320, unique=True)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="accounts")
    local_part = models.CharField(max_length=64)
    display_name = models.CharField(max_length=200, blank=True)
    quota_bytes = models.BigIntegerField(default=0, help_text="0 means no limit")
    used_bytes = models.BigIntegerField(default=0, editable=False)
    quota_messages = models.BigIntegerField(
        default=0, help_text="The most messages the account may hold (IMAP QUOTA's MESSAGE); 0 means no limit"
    )
    used_messages = models.BigIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to this admin site")
    created = models.DateTimeField(default=timezone.now)

    objects = AccountManager()

    USERNAME_FIELD = "address"
    EMAIL_FIELD = "address"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["address"]
        constraints = [models.UniqueConstraint(fields=["domain", "local_part"], name="account_unique_local_part")]

    def __str__(self) -> str:
        return self.address

    def get_full_name(self) -> str:
        return self.display_name or self.address

    def get_short_name(self) -> str:
        return self.local_part


class Alias(models.Model):
    """An address (or, with an empty local part, every unknown address of the domain) forwarded elsewhere."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="aliases")
    local_part = models.CharField(max_length=64, blank=True, help_text="Empty for a catch-all of the whole domain")
    destinations = models.TextField(help_text="One or more addresses, local or external, separated by commas")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["domain__name", "local_part"]
        verbose_name_plural = "aliases"
        constraints = [models.UniqueConstraint(fields=["domain", "local_part"], name="alias_unique_local_part")]

    def __str__(self) -> str:
        return f"{self.local_part or '*'}@{self.domain.name}"

    def save(self, *args, **kwargs) -> None:
        self.local_part = self.local_part.strip().lower()
        super().save(*args, **kwargs)

    @property
    def destination_list(self) -> list[str]:
        return [item.strip() for item in self.destinations.replace("\n", ",").split(",") if item.strip()]


class Role(models.TextChoices):
    """Special-use folders (RFC 6154), created with every account."""

    INBOX = "inbox", "Inbox"
    SENT = "sent", "Sent"
    DRAFTS = "drafts", "Drafts"
    TRASH = "trash", "Trash"
    JUNK = "junk", "Junk"
    ARCHIVE = "archive", "Archive"


STANDARD_FOLDERS = [
    ("INBOX", Role.INBOX),
    ("Sent", Role.SENT),
    ("Drafts", Role.DRAFTS),
    ("Trash", Role.TRASH),
    ("Junk", Role.JUNK),
    ("Archive", Role.ARCHIVE),
]


def new_uidvalidity() -> int:
    # RFC 3501 2.3.1.1: a folder re-created under the same name must get a different UIDVALIDITY; a random
    # 31-bit value (never 0) makes a repeat practically impossible without shared state.
    return secrets.randbelow(2**31 - 1) + 1


class Mailbox(models.Model):
    """A folder. `name` is the full path with "/" as the hierarchy delimiter; the Inbox is always "INBOX"."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="mailboxes")
    name = models.CharField(max_length=512)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    uidvalidity = models.BigIntegerField(default=new_uidvalidity)
    uidnext = models.BigIntegerField(default=1, help_text="The UID the next message will get")
    highestmodseq = models.BigIntegerField(default=1, help_text="Raised by every change in the folder")
    expunge_horizon = models.BigIntegerField(
        default=0,
        help_text="The expunge log forgot this folder's expunges up to this mod-sequence: a client resynchronising "
        "from before it is told every UID that is gone (RFC 7162 3.2.6)",
    )
    # Counts over the folder's messages, kept by the same UPDATE of this row that every action changing them
    # makes anyway (UIDs, mod-sequence: mailboxes.actions.counters), so IMAP STATUS and SELECT and the webmail's
    # unread counts read them instead of counting messages.
    message_count = models.BigIntegerField(default=0, editable=False)
    unseen_count = models.BigIntegerField(default=0, editable=False)
    deleted_count = models.BigIntegerField(default=0, editable=False, help_text="Messages flagged \\Deleted")
    total_size = models.BigIntegerField(default=0, editable=False, help_text="Octets of all messages")
    deleted_size = models.BigIntegerField(default=0, editable=False, help_text="Octets of the \\Deleted messages")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["account", "name"]
        verbose_name = "folder"
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="mailbox_unique_name"),
            models.UniqueConstraint(
                fields=["account", "role"], condition=~models.Q(role=""), name="mailbox_unique_role"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account.address}: {self.name}"


class RecentMark(models.Model):
    """Where a folder's \\Recent messages start (RFC 3501 2.3.2; shared by every IMAP process): no session has
    taken the messages from `first_uid` on. A row of its own rather than a column of the folder's, so that a
    session taking them (`actions.claim_recent`) never waits for the folder's writers, whose lock is on the
    folder's row. A folder without one has every message recent (`first_uid` 1)."""

    mailbox = models.OneToOneField(Mailbox, on_delete=models.CASCADE, primary_key=True, related_name="recent_mark")
    first_uid = models.BigIntegerField(default=1)
    taken_from = models.BigIntegerField(default=1, help_text="first_uid before the last claim moved it")

    def __str__(self) -> str:
        return f"{self.mailbox_id}: recent from UID {self.first_uid}"


class Subscription(models.Model):
    """A folder name the account subscribed to (IMAP SUBSCRIBE), kept apart from the folders: the name may
    belong to no folder, and it outlives a deleted folder (RFC 9051 6.3.7: a server MUST NOT unilaterally
    remove a name from the subscription list). Names are stored as folders' are (NFC, "INBOX")."""

    # No index of its own: subscription_unique_name starts with it.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="subscriptions", db_index=False)
    name = models.CharField(max_length=512)

    class Meta:
        ordering = ["account", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="subscription_unique_name")]

    def __str__(self) -> str:
        return f"{self.account.address}: {self.name}"


class MessageBody(models.Model):
    """The raw RFC 5322 bytes exactly as stored (received bytes plus our trace headers)."""

    raw = models.BinaryField()
    size = models.BigIntegerField()

    class Meta:
        verbose_name = "message body"

    def __str__(self) -> str:
        return f"body {self.pk} ({self.size} bytes)"


class Message(models.Model):
    """One message in one folder. Header columns are parsed once at delivery; the bytes are in `body`."""

    # No index of its own: message_account_list starts with it (one index fewer to update per delivered copy).
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="messages", db_index=False)
    # No index of its own either: message_unique_uid, message_changes and others start with it.
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages", db_index=False)
    uid = models.BigIntegerField()
    body = models.ForeignKey(MessageBody, on_delete=models.PROTECT, related_name="messages")
    modseq = models.BigIntegerField(default=1)
    # System flags (RFC 3501 2.3.2) as columns so SEARCH and unread counts use indexes.
    seen = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    draft = models.BooleanField(default=False)
    # Keywords as " kw1 kw2 " (space-delimited with spaces at both ends) so `contains " kw "` finds one exactly.
    keywords = models.TextField(blank=True, default="")
    internal_date = models.DateTimeField(default=timezone.now)
    size = models.BigIntegerField()
    crlf_size = models.BigIntegerField(help_text="Octets with every line ending in CRLF (POP3 sizes, RFC 1939 3)")
    # Parsed once at delivery.
    subject = models.TextField(blank=True, default="")
    from_name = models.CharField(max_length=300, blank=True, default="")
    from_address = models.CharField(max_length=320, blank=True, default="")
    to_addresses = models.TextField(blank=True, default="", help_text="Decoded To header, comma separated")
    cc_addresses = models.TextField(blank=True, default="")
    bcc_addresses = models.TextField(blank=True, default="")
    sent_date = models.DateTimeField(null=True, blank=True, help_text="The Date header")
    message_id = models.CharField(max_length=998, blank=True, default="")
    in_reply_to = models.CharField(max_length=998, blank=True, default="")
    references = models.TextField(blank=True, default="")
    thread_id = models.UUIDField(default=uuid.uuid4)
    has_attachments = models.BooleanField(default=False)
    attachment_names = models.TextField(
        blank=True, default="", help_text="File names and types of the attachments, for search"
    )
    snippet = models.CharField(max_length=200, blank=True, default="")
    search_text = models.TextField(blank=True, default="", help_text="Decoded readable text, for search")
    search_words = models.TextField(
        blank=True, default="", help_text="The search document folded (mailboxes.search_document); empty for ASCII"
    )
    envelope = models.JSONField(help_text="IMAP ENVELOPE fields (mailcore.mime.Envelope)")
    structure = models.JSONField(help_text="MIME tree with byte offsets (mailcore.mime.MimePart)")
    # The same two in IMAP wire form (mailcore.imap_wire), rendered once at delivery so FETCH only copies bytes.
    imap_envelope = models.BinaryField(help_text="ENVELOPE as IMAP sends it (RFC 3501 7.4.2)")
    imap_bodystructure = models.BinaryField(help_text="BODYSTRUCTURE as IMAP sends it (RFC 3501 7.4.2)")
    # BODY too: rendered later from `structure` it would list parameters in jsonb's key order, not BODYSTRUCTURE's.
    imap_body = models.BinaryField(help_text="BODY, the non-extensible BODYSTRUCTURE (RFC 3501 7.4.2)")

    class Meta:
        ordering = ["mailbox", "uid"]
        constraints = [models.UniqueConstraint(fields=["mailbox", "uid"], name="message_unique_uid")]
        indexes = [
            # With id, a deep page of a folder is an index-only scan (newest first, ties broken by id). Ascending,
            # read backwards: new mail then lands on the rightmost leaf, which PostgreSQL inserts into cheaply.
            models.Index(fields=["mailbox", "internal_date", "id"], name="message_list"),
            # Search in every folder, newest first: for a word in most messages, walking this beats the GIN index.
            models.Index(fields=["account", "internal_date", "id"], name="message_account_list"),
            models.Index(fields=["account", "thread_id"], name="message_thread"),
            # The conversation list asks, per message, whether its thread has a newer message in the same folder.
            models.Index(fields=["mailbox", "thread_id", "internal_date", "id"], name="message_folder_thread"),
            models.Index(fields=["account", "message_id"], name="message_message_id"),
            # With uid: a folder's first unseen message (IMAP SELECT's [UNSEEN]) is one probe (migration 0014).
            models.Index(fields=["mailbox", "seen", "uid"], name="message_unseen"),
            # What changed in a folder since a mod-sequence (IMAP QRESYNC, CONDSTORE; see migration 0011).
            models.Index(fields=["mailbox", "modseq"], name="message_changes"),
            # The keywords a folder uses (IMAP FLAGS): only messages that have keywords are in it.
            models.Index(fields=["mailbox", "keywords"], condition=~models.Q(keywords=""), name="message_keywords"),
            # What EXPUNGE removes, found without reading the folder (which it holds locked meanwhile); only messages
            # flagged \Deleted are in it (migration 0024).
            models.Index(fields=["mailbox", "uid"], condition=models.Q(deleted=True), name="message_deleted"),
            models.Index(Lower("from_address"), "account", name="message_from"),
            # has:attachment and filename: read only this (an index-only scan), kept for attachment mail only.
            models.Index(
                fields=["account", "internal_date", "id"],
                include=["attachment_names"],
                condition=models.Q(has_attachments=True),
                name="message_attachments",
            ),
        ]
        # Full-text search (webmail) uses a PostgreSQL-only stored tsvector column, `search_document`, and its GIN
        # index, created by migration 0012 rather than declared here so the model stays portable to SQLite (and
        # Django never writes the column: PostgreSQL computes it).

    def __str__(self) -> str:
        return f"{self.mailbox_id}/{self.uid}: {self.subject}"

    @property
    def keyword_list(self) -> list[str]:
        return self.keywords.split()


class RecycledMessage(models.Model):
    """A message removed by its owner (EXPUNGE, POP3 DELE, "delete forever", a deleted folder), kept for
    MAILSITE_RETENTION_DAYS so it can be restored: invisible to IMAP and POP3 and not counted in the quota; its
    body stays while this row refers to it."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="recycled")
    folder_name = models.CharField(max_length=512, help_text="The folder it was removed from")
    body = models.ForeignKey(MessageBody, on_delete=models.PROTECT, related_name="recycled")
    size = models.BigIntegerField()
    subject = models.TextField(blank=True, default="")
    from_name = models.CharField(max_length=300, blank=True, default="")
    from_address = models.CharField(max_length=320, blank=True, default="")
    internal_date = models.DateTimeField()
    flags = models.TextField(blank=True, default="", help_text="IMAP flags and keywords at removal")
    removed = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-removed"]
        indexes = [
            models.Index(fields=["account", "removed"], name="recycled_account_removed"),
            models.Index(fields=["removed"], name="recycled_removed"),
        ]

    def __str__(self) -> str:
        return f"{self.subject[:60]} (from {self.folder_name})"


class ExpungedMessage(models.Model):
    """A message that left a folder (EXPUNGE, MOVE, deletion) and the folder's mod-sequence then, so a client
    resynchronising with QRESYNC learns which of its UIDs vanished (RFC 7162 3.2.10). Kept for
    MAILSITE_IMAP_EXPUNGE_KEEP; the folder's `expunge_horizon` says how far back the log was forgotten."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="expunged")
    uid = models.BigIntegerField()
    modseq = models.BigIntegerField()
    expunged = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["mailbox", "modseq"], name="expunged_since")]

    def __str__(self) -> str:
        return f"{self.mailbox_id}/{self.uid} expunged at {self.modseq}"


class MessageText(models.Model):
    """What IMAP SEARCH TEXT and BODY read of a message, upper-cased, for their trigram index
    (mailboxes.text_index), written after delivery in batches. On PostgreSQL the row goes with its message (ON
    DELETE CASCADE, migration 0015)."""

    message = models.OneToOneField(
        Message, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="+"
    )
    # The message's, which never changes: the index is searched per account (migration 0016).
    account = models.ForeignKey(
        Account, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    text = models.TextField()

    def __str__(self) -> str:
        return f"text of message {self.message_id}"


class MessageTextMark(models.Model):
    """Per folder, the UID up to which every message has its MessageText (goes with its folder, as above)."""

    mailbox = models.OneToOneField(
        Mailbox, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="+"
    )
    uid = models.BigIntegerField()

    def __str__(self) -> str:
        return f"folder {self.mailbox_id} indexed up to UID {self.uid}"


class AuthFailure(models.Model):
    """Recent failed logins, shared by every protocol and process for throttling (one row per failure)."""

    address = models.CharField(max_length=320, db_index=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    protocol = models.CharField(max_length=16)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.address} from {self.remote_ip} ({self.protocol})"
