"""Template filters of the webmail: sizes, dates and sender names as a mail list shows them."""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def filesize(size: int) -> str:
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
