"""The Scheduled page: messages waiting to be sent later, with their time; cancel one, or open it to change it."""

from __future__ import annotations

from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from webmail import scheduling
from webmail.models import ScheduledSend
from webmail.views.common import account, account_required


@account_required
def scheduled(request: HttpRequest) -> HttpResponse:
    entries = ScheduledSend.objects.filter(account=account(request)).select_related("message")
    return render(request, "webmail/scheduled.html", {"entries": entries})


@require_POST
@account_required
def cancel(request: HttpRequest, entry_id: int) -> HttpResponse:
    if scheduling.cancel(account(request).pk, entry_id) is not None:
        notices.success(request, "Not scheduled any more: the message is in Drafts.")
    return redirect("webmail:scheduled")


@require_POST
@account_required
def edit(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Changing a scheduled message first cancels the send, as Gmail does; Send later sets a time again."""
    draft = scheduling.cancel(account(request).pk, entry_id)
    if draft is None:
        return redirect("webmail:scheduled")
    return redirect(f"{reverse('webmail:compose')}?draft={draft.pk}")
