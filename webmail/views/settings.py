"""The settings page: name, signature, time zone, reading pane and page size (the password, app passwords and
two-factor sign-in are on the security page it links to, `views/security.py`)."""

from __future__ import annotations

from django.contrib import messages as notices
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from mailboxes import actions
from webmail import preferences, sanitize
from webmail.forms import SettingsForm
from webmail.views.common import account, account_required


def _settings_form(request: HttpRequest, data=None) -> SettingsForm:
    chosen = preferences.of(account(request))
    initial = {
        "display_name": account(request).display_name,
        "signature": chosen.signature,
        "signature_html": chosen.signature_html,
        "time_zone": chosen.time_zone,
        "reading_pane": chosen.reading_pane,
        "page_size": chosen.page_size,
        "undo_send_seconds": chosen.undo_send_seconds,
    }
    return SettingsForm(data, initial=initial)


@account_required
def settings_view(request: HttpRequest) -> HttpResponse:
    form = _settings_form(request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        me = account(request)
        with transaction.atomic():
            chosen = preferences.of(me)
            chosen.signature = data["signature"].replace("\r\n", "\n")
            chosen.signature_html = sanitize.clean_outgoing(data["signature_html"]) if data["signature_html"] else ""
            chosen.time_zone = data["time_zone"]
            chosen.reading_pane = data["reading_pane"]
            chosen.page_size = data["page_size"]
            chosen.undo_send_seconds = data["undo_send_seconds"]
            chosen.save()
            if data["display_name"] != me.display_name:
                # The display name is a column of the account itself: written by the store's action.
                actions.update_account(me, display_name=data["display_name"])
        notices.success(request, "Settings saved.")
        return redirect("webmail:settings")
    status = 400 if form.errors else 200
    return render(request, "webmail/settings.html", {"form": form}, status=status)
