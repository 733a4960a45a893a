"""Training the junk filters on a user's judgement: the built-in per-account statistics, and rspamd.

Moving a message into Junk trains it as spam for that account, out of Junk as ham. `schedule` is what the
store's move and copy actions call: it sends one Celery task when their transaction commits. Training is
idempotent per message (by the SHA-256 of its bytes): the same judgement twice changes nothing, a changed
mind moves the message's tokens from one class to the other. rspamd keeps its own learn cache per message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.db import connection, transaction

from mailauth import bayes
from mailauth.models import JunkToken, JunkTraining
from mailboxes.actions.locks import action, lock

_UPSERT = (
    f"INSERT INTO {JunkToken._meta.db_table} (account_id, token, spam, ham) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (account_id, token) DO UPDATE SET "
    f"spam = {JunkToken._meta.db_table}.spam + excluded.spam, ham = {JunkToken._meta.db_table}.ham + excluded.ham"
)


def _count(account_id: int, tokens: Sequence[int], spam: int, ham: int) -> None:
    # Ascending tokens: two trainings of one account upsert the same rows in the same order, never deadlock.
    with connection.cursor() as cursor:
        cursor.executemany(_UPSERT, [(account_id, token, spam, ham) for token in sorted(tokens)])


@action
def train_builtin(account_id: int, raw: bytes, *, spam: bool) -> bool:
    """Count the message's tokens for the account as spam or ham; False when it already was so trained.

    The account's row lock (the store's lock helper) makes the trainings of one account take turns, so the
    record of what was learnt and the counts always agree."""
    digest = hashlib.sha256(raw).hexdigest()
    lock(accounts=[account_id])
    previous = JunkTraining.objects.filter(account_id=account_id, digest=digest).first()
    if previous is None:
        JunkTraining.objects.create(account_id=account_id, digest=digest, spam=spam)
        _count(account_id, bayes.tokens(raw), 1 if spam else 0, 0 if spam else 1)
        return True
    if previous.spam == spam:
        return False
    previous.spam = spam
    previous.save(update_fields=["spam"])
    # Relearning: the message's tokens leave the class it was counted in.
    _count(account_id, bayes.tokens(raw), 1 if spam else -1, -1 if spam else 1)
    return True


def schedule(message_ids: Sequence[int], *, spam: bool) -> None:
    """Train on these stored messages once the current transaction commits (for the store's actions)."""
    from django.conf import settings

    from mailauth import tasks

    ids = sorted(set(message_ids))
    if ids:
        # The queue the mail workers consume (MAILSITE_RELAY_QUEUE, "celery" unless configured).
        queue = settings.MAILSITE_RELAY_QUEUE
        transaction.on_commit(lambda: tasks.learn.apply_async((ids, spam), queue=queue))


def on_transfer(source_id: int, target_id: int, message_ids: Sequence[int]) -> None:
    """For the store's move and copy actions: into Junk trains spam; out of Junk trains ham, unless into Trash
    (throwing junk away says nothing about it)."""
    from mailboxes.models import Mailbox, Role

    if source_id == target_id or not message_ids:
        return
    roles = dict(Mailbox.objects.filter(pk__in=[source_id, target_id]).values_list("pk", "role"))
    source, target = roles.get(source_id), roles.get(target_id)
    if target == Role.JUNK and source != Role.JUNK:
        schedule(message_ids, spam=True)
    elif source == Role.JUNK and target not in (Role.JUNK, Role.TRASH):
        schedule(message_ids, spam=False)
