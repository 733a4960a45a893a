"""Reads for the webmail: folder lists, message pages, conversations, search and contact suggestions.

Every function runs a fixed number of queries whatever the page size, and list queries load only the columns a
list shows (never the raw body, the MIME structure or the search text). Conversations and search results are
counted only up to `COUNT_CAP` (the page then says "1,000+"): counting every match of a common word, or every
thread of a big folder, would cost as much as reading them all.
"""

from __future__ import annotations

import datetime
import re
import uuid
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from mailboxes import search_document
from mailboxes.models import Account, Mailbox, Message, Role
from mailcore.search_words import fold_query
from webmail.addresses import split_addresses
from webmail.models import Contact
from webmail.search_terms import Terms
from webmail.search_terms import parse as parse_terms

PAGE_SIZE = 50
LIST_COLUMNS = (
    "id",
    "mailbox_id",
    "uid",
    "seen",
    "flagged",
    "answered",
    "draft",
    "internal_date",
    "sent_date",
    "subject",
    "from_name",
    "from_address",
    "to_addresses",
    "snippet",
    "has_attachments",
    "thread_id",
)
# The tsvector column with the GIN index (PostgreSQL only, mailboxes.search_document); the model does not
# declare it, so only this raw SQL names it. Each condition takes its query twice.
SEARCH_MATCH = search_document.matches(Message._meta.db_table, "websearch_to_tsquery('simple'::regconfig, %s)")
PREFIX_MATCH = search_document.matches(Message._meta.db_table, "to_tsquery('simple'::regconfig, %s)")
_WORD = re.compile(r"[^\W_]+")  # what the 'simple' parser makes words of: letters and digits
COUNT_CAP = 1000
# Folders in the order mail clients show them; other folders follow alphabetically.
ROLE_ORDER = [Role.INBOX, Role.DRAFTS, Role.SENT, Role.ARCHIVE, Role.JUNK, Role.TRASH]


@dataclass
class Page:
    items: list
    number: int
    total: int
    capped: bool = False  # more than `total` exist; counting stopped there
    size: int = PAGE_SIZE  # rows per page (the user's choice)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.capped or self.number < self.pages

    @property
    def total_label(self) -> str:
        return f"{self.total}+" if self.capped else str(self.total)

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.size + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        return (self.number - 1) * self.size + len(self.items)


def folders(account: Account) -> list[Mailbox]:
    """Every folder with its `unread` and `total` counts, special folders first (one query): the folders' rows
    keep the counts (mailboxes.actions.counters), so no message is read."""
    rows = Mailbox.objects.filter(account=account).annotate(unread=F("unseen_count"), total=F("message_count"))
    rank = {str(role): index for index, role in enumerate(ROLE_ORDER)}
    return sorted(rows, key=lambda m: (rank.get(m.role, len(rank)), m.name.casefold()))


def _bounded(number: int, total: int, size: int) -> int:
    return min(max(number, 1), max(1, -(-total // size)))


def _capped_count(rows: QuerySet[Message], number: int, size: int) -> tuple[int, bool]:
    """(total, capped): rows counted up to COUNT_CAP, or through page `number` when it lies beyond (one query).

    When capped, more than `total` rows exist and `total` reaches past the end of page `number`, so the page is
    not moved back and has a next page. The page number is clamped so the LIMIT stays a valid integer.
    """
    limit = max(COUNT_CAP, min(number, 10**9) * size)
    found = rows.order_by().values("id")[: limit + 1].count()
    return (limit, True) if found > limit else (found, False)


def message_page(mailbox: Mailbox, number: int, size: int = PAGE_SIZE) -> Page:
    """One page of a folder, newest first (two queries: a count and the page)."""
    messages = Message.objects.filter(mailbox=mailbox)
    total = messages.count()
    number = _bounded(number, total, size)
    start = (number - 1) * size
    # The offset walks ids only (an index-only scan of message_list); the page's rows are fetched by id.
    page_ids = messages.order_by("-internal_date", "-id").values("id")[start : start + size]
    items = list(Message.objects.filter(id__in=page_ids).only(*LIST_COLUMNS).order_by("-internal_date", "-id"))
    return Page(items, number, total, size=size)


@dataclass
class Conversation:
    latest: Message  # the newest message of the thread in this folder, shown as the row
    count: int
    unread: int
    flagged: bool


def conversation_page(mailbox: Mailbox, number: int, size: int = PAGE_SIZE) -> Page:
    """One page of a folder's conversations, most recently active first (three queries).

    Walking the folder newest first (the message_list index), the first message seen of each thread is its newest
    one; a message is kept when its thread has no newer message in the folder (a probe of message_folder_thread).
    So a page costs what the messages down to it cost, never a grouping of the whole folder.
    """
    date = OuterRef("internal_date")
    later = Q(internal_date__gt=date) | Q(internal_date=date, id__gt=OuterRef("id"))
    newer = Message.objects.filter(later, mailbox=mailbox, thread_id=OuterRef("thread_id"))
    newest = Message.objects.filter(mailbox=mailbox).filter(~Exists(newer))
    total, capped = _capped_count(newest, number, size)
    number = _bounded(number, total, size)
    start = (number - 1) * size
    # As in message_page: the walk to the page reads only the message_list index (which carries thread_id for
    # the probe), and the page's rows are fetched by id.
    page_ids = newest.order_by("-internal_date", "-id").values("id")[start : start + size]
    latest = list(Message.objects.filter(id__in=page_ids).only(*LIST_COLUMNS).order_by("-internal_date", "-id"))
    counts = {
        row["thread_id"]: row
        for row in Message.objects.filter(mailbox=mailbox, thread_id__in=[m.thread_id for m in latest])
        .order_by()
        .values("thread_id")
        .annotate(
            count=Count("id"),
            unread=Count("id", filter=Q(seen=False)),
            starred=Count("id", filter=Q(flagged=True)),
        )
    }
    items = [Conversation(m, c["count"], c["unread"], c["starred"] > 0) for m in latest for c in [counts[m.thread_id]]]
    return Page(items, number, total, capped, size)


def thread_messages(account: Account, thread_id: uuid.UUID) -> list[Message]:
    """Every message of a conversation in every folder, oldest first, with its folder (one query)."""
    return list(
        Message.objects.filter(account=account, thread_id=thread_id)
        .select_related("mailbox")
        .defer("search_text", "envelope", "imap_envelope", "imap_body", "imap_bodystructure")
        .order_by("internal_date", "id")
    )


def _day_start(day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in the user's time zone (the one dates are shown in)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()), timezone.get_current_timezone())


def _words_begin(messages: QuerySet[Message], value: str) -> QuerySet[Message]:
    """On PostgreSQL, first narrow to messages whose search document has words beginning with each word of
    `value` (through the GIN index), so the substring test on a column below reads only those rows. The
    document holds sender, recipients (their addresses also split at "@" and ".") and subject."""
    words = _WORD.findall(fold_query(value))
    if connection.vendor != "postgresql" or not words:
        return messages
    query = " & ".join(f"'{word}':*" for word in words)
    return messages.filter(RawSQL(PREFIX_MATCH, [query, query], output_field=BooleanField()))


def _contains(column: str, value: str) -> Q:
    """`column` contains `value` in any case. PostgreSQL gets ILIKE, whose selectivity it estimates from the
    column's statistics; it has none for the `UPPER(column) LIKE` Django writes, so it took a recipient of every
    message for a rare one and sorted a scan of the whole table instead of reading the newest rows first."""
    if connection.vendor != "postgresql":
        return Q(**{f"{column}__icontains": value})
    pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return Q(RawSQL(f'{Message._meta.db_table}."{column}" ILIKE %s', [pattern], output_field=BooleanField()))


def _filtered(messages: QuerySet[Message], terms: Terms) -> QuerySet[Message]:
    """The search operators as conditions on the list columns: from:, to: and subject: match a substring of
    their columns, and on PostgreSQL only where the values' words begin words of the message (see
    `_words_begin`): `from:ann` finds Ann and anne@..., not Joanna."""
    for sender in terms.senders:
        messages = _words_begin(messages, sender)
        messages = messages.filter(_contains("from_address", sender) | _contains("from_name", sender))
    for recipient in terms.recipients:
        messages = _words_begin(messages, recipient)
        messages = messages.filter(
            _contains("to_addresses", recipient)
            | _contains("cc_addresses", recipient)
            | _contains("bcc_addresses", recipient)
        )
    for subject in terms.subjects:
        messages = _words_begin(messages, subject)
        messages = messages.filter(_contains("subject", subject))
    for name in terms.filenames:
        # The names and types of the attachments (in the message_attachments index): "pdf" finds PDF attachments.
        messages = messages.filter(_contains("attachment_names", name), has_attachments=True)
    if terms.has_attachment is not None:
        messages = messages.filter(has_attachments=terms.has_attachment)
    if terms.unread is not None:
        messages = messages.filter(seen=not terms.unread)
    if terms.starred is not None:
        messages = messages.filter(flagged=terms.starred)
    if terms.after is not None:
        messages = messages.filter(internal_date__gte=_day_start(terms.after))
    if terms.before is not None:
        messages = messages.filter(internal_date__lt=_day_start(terms.before))
    return messages


def search_folder(account: Account, name: str) -> Mailbox | None:
    """The folder an `in:` operator names: by name (any case), or by special use ("in:sent")."""
    folders = Mailbox.objects.filter(account=account)
    return folders.filter(name__iexact=name).first() or folders.filter(role=name.lower()).first()


def search(account: Account, text: str, mailbox: Mailbox | None, number: int, size: int = PAGE_SIZE) -> Page:
    """Messages matching `text` in sender, recipients, subject or body, newest first (three queries).

    `text` may hold search operators (`webmail.search_terms`): they filter on the list columns, and the rest is
    matched as before. PostgreSQL uses the stored search document and its full-text index (words, with
    web-search syntax: "quoted phrases", -exclusions, or), the query folded as documents are: without accents
    ("cafe" finds "Café" and "café" finds "cafe") and with CJK as bigrams (a Chinese or Japanese word is found
    inside a sentence). SQLite matches each word as a substring of the same columns.
    """
    terms = parse_terms(text)
    messages: QuerySet[Message] = Message.objects.filter(account=account)
    if terms.folder == "all":
        mailbox = None
    elif terms.folder is not None:
        mailbox = search_folder(account, terms.folder)
        if mailbox is None:
            messages = messages.none()
    if mailbox is not None:
        messages = messages.filter(mailbox=mailbox)
    messages = _filtered(messages, terms)
    text = terms.text.strip()
    if text and connection.vendor == "postgresql":
        messages = messages.filter(RawSQL(SEARCH_MATCH, [fold_query(text)] * 2, output_field=BooleanField()))
    elif text:
        for word in text.split():
            messages = messages.filter(
                Q(subject__icontains=word)
                | Q(from_name__icontains=word)
                | Q(from_address__icontains=word)
                | Q(to_addresses__icontains=word)
                | Q(cc_addresses__icontains=word)
                | Q(search_text__icontains=word)
            )
    total, capped = _capped_count(messages, number, size)
    number = _bounded(number, total, size)
    start = (number - 1) * size
    # The walk to the page reads ids only (for filename: and has:attachment an index-only scan of
    # message_attachments, however few attachments match), then the page's rows are fetched by id. Not as a
    # subquery: the raw conditions above name the message table, which inside one would be the outer query's.
    page_ids = list(messages.order_by("-internal_date", "-id").values_list("id", flat=True)[start : start + size])
    items = list(
        Message.objects.filter(id__in=page_ids)
        .select_related("mailbox")
        .only(*LIST_COLUMNS, "mailbox__name", "mailbox__role")
        .order_by("-internal_date", "-id")
    )
    return Page(items, number, total, capped, size)


def contacts(account: Account, prefix: str, limit: int = 10) -> list[str]:
    """Addresses the user has received mail from or sent mail to that start with `prefix` (name or address)."""
    prefix = prefix.strip()
    if not prefix:
        return []
    found: dict[str, str] = {}
    # The address book first: the names the user chose.
    saved = (
        Contact.objects.filter(account=account)
        .filter(Q(address__istartswith=prefix) | Q(name__istartswith=prefix))
        .values_list("name", "address")[:limit]
    )
    for name, address in saved:
        found.setdefault(address.lower(), f"{name} <{address}>" if name else address)
    senders = (
        Message.objects.filter(account=account)
        .filter(Q(from_address__istartswith=prefix) | Q(from_name__istartswith=prefix))
        .exclude(from_address="")
        .values_list("from_name", "from_address")
        .order_by("-internal_date")[:200]
    )
    for name, address in senders:
        found.setdefault(address.lower(), f"{name} <{address}>" if name else address)
    sent = (
        Message.objects.filter(account=account, mailbox__role=Role.SENT, to_addresses__icontains=prefix)
        .values_list("to_addresses", "cc_addresses")
        .order_by("-internal_date")[:100]
    )

    needle = prefix.casefold()
    for to, cc in sent:
        for name, address in split_addresses(f"{to}, {cc}"):
            if address.casefold().startswith(needle) or name.casefold().startswith(needle):
                found.setdefault(address.lower(), f"{name} <{address}>" if name else address)
    return sorted(found.values(), key=str.casefold)[:limit]
