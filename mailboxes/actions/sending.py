"""The webmail's writes of a message being written: send it, or save it as a draft."""

from __future__ import annotations

from collections.abc import Sequence

from mailboxes.actions import counters
from mailboxes.actions.delivery import Expansions, lock_up_front, submit_in
from mailboxes.actions.errors import ServiceError
from mailboxes.actions.flags import FlagMode, set_flags
from mailboxes.actions.locks import action, lock
from mailboxes.actions.messages import append, delete_messages
from mailboxes.models import Account, Message
from mailboxes.recipients import RecipientStatus

# What the sender is told about a recipient that could not be sent to.
_WHY = {
    RecipientStatus.UNKNOWN: "no such mailbox",
    RecipientStatus.OVER_QUOTA: "mailbox full",
}


class NotSent(ServiceError):
    """Some recipients cannot get the message: nothing was sent to anyone."""

    def __init__(self, refused: dict[str, RecipientStatus]) -> None:
        self.refused = refused
        reasons = ", ".join(f"{rcpt} ({_WHY.get(status, str(status))})" for rcpt, status in refused.items())
        super().__init__(f"could not deliver to {reasons}")


MessageRef = tuple[int, int]  # (folder id, uid)


@action
def send(
    account: Account,
    transmitted: bytes,
    recipients: Sequence[str],
    *,
    sent_copy: bytes,
    sent_folder: int,
    answered: MessageRef | None = None,
    draft: MessageRef | None = None,
    author_domain: str | None,
) -> Message:
    """Send as SMTP submission does (local recipients get it now, other domains go to the outbound queue), keep
    `sent_copy` in Sent, flag the original answered and drop the draft: all or nothing, in one transaction.

    Every lock is named first (Sent, the original's and the draft's folders and the recipients' Inboxes, then
    the recipients' and the sender's accounts), so two users sending to each other at the same moment wait
    for each other instead of deadlocking.
    """
    folders = [
        counters.own_folder(account.pk, pk) for pk in {sent_folder, *(ref[0] for ref in (answered, draft) if ref)}
    ]
    expansions: Expansions = {}
    lock_up_front(
        [(transmitted, account.address, recipients)], expansions, folders=folders, accounts=[account.pk], senders=False
    )
    report = submit_in(transmitted, account.address, recipients, expansions, author_domain)
    sent_on = {RecipientStatus.LOCAL, RecipientStatus.REMOTE}  # REMOTE: queued for the relay
    refused = {rcpt: status for rcpt, status in report.results.items() if status not in sent_on}
    if refused:
        raise NotSent(refused)
    stored = append(account, sent_folder, sent_copy, flags=["\\Seen"])
    if answered is not None:
        set_flags(account, answered[0], [answered[1]], ["\\Answered"], FlagMode.ADD)
    if draft is not None:
        delete_messages(account, draft[0], [draft[1]])
    return stored


@action
def save_draft(account: Account, raw: bytes, *, drafts_folder: int, previous: MessageRef | None) -> Message:
    """Store the message in Drafts, replacing the previous version of the same draft."""
    lock(folders={drafts_folder, *([previous[0]] if previous else [])}, accounts=[account.pk], owner=account.pk)
    stored = append(account, drafts_folder, raw, flags=["\\Draft", "\\Seen"])
    if previous is not None:
        delete_messages(account, previous[0], [previous[1]])
    return stored
