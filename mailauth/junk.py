"""The junk verdict at DATA: the score of the configured engine, and the header fields that carry it.

With MAILSITE_RSPAMD_URL set, rspamd scores the message; when it is down or slow the message goes in
unscored and the log says so (never a refusal for our own trouble).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from django.conf import settings

from mailauth import rspamd
from mailauth.rspamd import SpamScore
from mailauth.verify import Envelope

log = logging.getLogger("mailauth.junk")

# Our fields: copies arriving from outside are removed, so a sender cannot mark its own mail as clean.
SPAM_FIELDS = (b"X-Spam-Status", b"X-Spam", b"X-Spam-Score")
_FIELDS = re.compile(
    rb"(?im)^(?:" + b"|".join(re.escape(n) for n in SPAM_FIELDS) + rb")[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*(?:\r\n|$)"
)


async def score(raw: bytes, envelope: Envelope, recipients: Sequence[str], queue_id: str) -> SpamScore | None:
    """The engine's score, or None when no engine is configured or it gave no answer in time."""
    url = settings.MAILSITE_RSPAMD_URL
    if not url:
        return None
    facts: dict[str, str | list[str]] = {"IP": envelope.ip, "Helo": envelope.helo, "Queue-Id": queue_id}
    facts["From"] = envelope.sender or "<>"
    facts["Rcpt"] = list(recipients)
    try:
        return await rspamd.check(url, raw, facts, limit=settings.MAILSITE_RSPAMD_TIMEOUT)
    except rspamd.RspamdUnavailable as exc:
        log.warning("rspamd unavailable, message delivered unscored queue_id=%s: %s", queue_id, exc)
        return None


def remove_spam_fields(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    end = len(raw) if end < 0 else end + 2
    return _FIELDS.sub(b"", raw[:end]) + raw[end:]


def status_fields(found: SpamScore, *, junk_score: float, engine: str) -> bytes:
    """SpamAssassin-style fields, which most clients and Sieve scripts understand."""
    flag = "Yes" if found.score >= junk_score else "No"
    tests = ",".join(found.symbols)[:500]
    return (
        f"X-Spam: {flag}\r\n"
        f"X-Spam-Status: {flag}, score={found.score:.2f} required={junk_score:.2f} engine={engine}\r\n"
        f"\ttests={tests or 'none'}\r\n"
    ).encode("ascii", "replace")
