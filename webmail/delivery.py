"""Where a sent message stands with each remote recipient: read from the outbound queue (`relay.models`).

The Sent copy and the queued message are written by the same send action but are not linked by a column; the
queued message is found among the sender's queued messages created around the Sent copy's internal date and
recognised by its Message-ID in the bytes (both copies are built with the same one).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from mailboxes.models import Message
from relay.models import OPEN_STATES, OutboundMessage, OutboundRecipient

# The send action writes both rows in one transaction, so their timestamps differ by its duration at most.
WINDOW = datetime.timedelta(minutes=2)


@dataclass
class RecipientState:
    address: str
    state: str  # queued, deferred, delivered, bounced, held
    attempts: int
    next_attempt: datetime.datetime | None  # for queued and deferred recipients
    reply: str  # the remote server's last reply, with its code
    host: str

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


def recipients(sent: Message) -> list[RecipientState]:
    """Each remote recipient of a message in Sent, with its delivery state (two small queries)."""
    if not sent.message_id:
        return []
    marker = f"message-id: {sent.message_id}".encode().lower()
    candidates = OutboundMessage.objects.filter(
        sender=sent.account.address,
        created__gte=sent.internal_date - WINDOW,
        created__lte=sent.internal_date + WINDOW,
    ).only("id", "raw")
    found = [m.pk for m in candidates if marker in bytes(m.raw)[:65536].lower()]
    rows = OutboundRecipient.objects.filter(message_id__in=found).order_by("address")
    return [
        RecipientState(
            address=row.address,
            state=row.state,
            attempts=row.attempts,
            next_attempt=row.next_attempt if row.state in OPEN_STATES else None,
            reply=f"{row.last_code} {row.last_reply}".strip() if row.last_code else row.last_reply,
            host=row.last_host,
        )
        for row in rows
    ]
