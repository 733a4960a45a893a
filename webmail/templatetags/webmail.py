"""Template filters of the webmail: sizes, dates and sender names as a mail list shows them."""

from __future__ import annotations

import datetime
import time

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def filesize(size: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    return f"{size:.1f} GB"


@register.filter
def listdate(value: datetime.datetime | None) -> str:
    """Today's mail by time, this year's by day and month, older mail with the year."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    today = timezone.localdate()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.year == today.year:
        return local.strftime("%d %b")
    return local.strftime("%d %b %Y")


@register.filter
def sender(message) -> str:
    return message.from_name or message.from_address or "(no sender)"


UNDO_KEY = "webmail_undo"  # session: the last move, offered for undoing once, on the page it led to
UNDO_SECONDS = 30  # an offer older than this (its page was never shown) is dropped; the page hides it sooner


@register.inclusion_tag("webmail/_undo.html", takes_context=True)
def undo_offer(context) -> dict:
    """The Undo button for the move just made, shown once (on the page the move led to)."""
    request = context.get("request")
    offer = request.session.pop(UNDO_KEY, None) if request is not None and hasattr(request, "session") else None
    if offer is not None and time.time() - offer.get("at", 0) > UNDO_SECONDS:
        offer = None
    return {"offer": offer, "csrf_token": context.get("csrf_token"), "next": request.get_full_path() if request else ""}
