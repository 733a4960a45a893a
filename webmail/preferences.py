"""The signed-in user's webmail preferences, read once per request, and the time zone they put dates in."""

from __future__ import annotations

import zoneinfo

from django.http import HttpRequest
from django.utils import timezone

from mailboxes.models import Account
from webmail.models import Preferences, valid_time_zone


def of(account: Account) -> Preferences:
    """The account's preferences; the defaults (unsaved) until the user first saves the settings page."""
    return Preferences.objects.filter(account=account).first() or Preferences(account=account)


def apply(request: HttpRequest, account: Account) -> Preferences:
    """Read the preferences into `request.preferences` and show dates in the user's time zone."""
    preferences = of(account)
    request.preferences = preferences  # type: ignore[attr-defined]
    if preferences.time_zone and valid_time_zone(preferences.time_zone):
        timezone.activate(zoneinfo.ZoneInfo(preferences.time_zone))
    else:
        timezone.deactivate()
    return preferences


def detected(account: Account, browser_zone: str) -> None:
    """At sign-in: the zone the browser reports becomes the user's, unless they have one already."""
    if valid_time_zone(browser_zone):
        Preferences.objects.get_or_create(account=account, defaults={"time_zone": browser_zone})
        Preferences.objects.filter(account=account, time_zone="").update(time_zone=browser_zone)
