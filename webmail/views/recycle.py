"""The recycle bin page: messages the user removed in the last MAILSITE_RETENTION_DAYS, restorable."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from mailboxes import actions
from mailboxes.models import RecycledMessage
from webmail.views.common import account, account_required

PAGE = 200  # the newest removals; older ones are restored from the admin


@account_required
@require_http_methods(["GET", "POST"])
def recycle_bin(request: HttpRequest) -> HttpResponse:
    me = account(request)
    if request.method == "POST":
        ids = [int(value) for value in request.POST.getlist("restore") if value.isdigit()]
        try:
            restored = actions.restore(me, ids)
        except actions.ServiceError as exc:
            notices.error(request, f"Nothing was restored: {exc}")
        else:
            notices.success(request, f"Restored {len(restored)} message{'s' if len(restored) != 1 else ''}.")
        return redirect("webmail:recycle_bin")
    items = RecycledMessage.objects.filter(account=me).only(
        "folder_name", "subject", "from_name", "from_address", "size", "removed"
    )[:PAGE]
    return render(request, "webmail/recycle.html", {"items": items, "retention_days": settings.MAILSITE_RETENTION_DAYS})
