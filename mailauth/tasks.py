"""Celery tasks of mailauth: training on a user's junk judgement (see `training`)."""

from __future__ import annotations

import logging

from django.conf import settings

from mailauth import rspamd, training
from mailboxes.models import Message, MessageBody
from mailsite.celery import app

log = logging.getLogger("mailauth.training")


@app.task(name="mailauth.learn", bind=True, max_retries=5, default_retry_delay=60)
def learn(self, message_ids: list[int], spam: bool) -> None:
    """Idempotent: a retry after a partial run trains again only what was not trained."""
    rows = Message.objects.filter(pk__in=message_ids).values_list("account_id", "body_id")
    bodies = dict(MessageBody.objects.filter(pk__in={body for _, body in rows}).values_list("pk", "raw"))
    unavailable: rspamd.RspamdUnavailable | None = None
    for account_id, body_id in rows:
        raw = bytes(bodies[body_id])
        training.train_builtin(account_id, raw, spam=spam)
        if settings.MAILSITE_RSPAMD_CONTROLLER_URL:
            try:
                rspamd.learn(
                    settings.MAILSITE_RSPAMD_CONTROLLER_URL, raw, spam=spam, timeout=settings.MAILSITE_RSPAMD_TIMEOUT
                )
            except rspamd.RspamdUnavailable as exc:
                unavailable = exc
    log.info("trained %d message(s) as %s", len(rows), "spam" if spam else "ham")
    if unavailable is not None:
        log.warning("rspamd training failed, will retry: %s", unavailable)
        raise self.retry(exc=unavailable)
