"""Allowed and blocked senders: the account's own lists, which the MX weighs for every message to it.

Mail from an allowed sender never goes to Junk by a junk engine's verdict; mail from a blocked one always does
(see `mailauth.junk`). Entries are addresses or whole domains; the store's actions in `mailauth.sender_rules`
write them.
"""

from __future__ import annotations

from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from mailauth import sender_rules
from mailauth.models import SenderRule
from mailcore.idn import unicode_domain
from webmail.views.common import account, account_required


def _shown(entry: str) -> str:
    local, at, domain = entry.rpartition("@")
    return f"{local}{at}{unicode_domain(domain)}"


@account_required
def senders(request: HttpRequest) -> HttpResponse:
    me = account(request)
    status = 200
    typed = ""
    if request.method == "POST":
        typed = request.POST.get("sender", "")
        allow = request.POST.get("list") == "allow"
        try:
            rule = sender_rules.set_sender_rule(me.pk, typed, allow=allow)
        except sender_rules.InvalidSender as exc:
            notices.error(request, str(exc))
            status = 400
        else:
            where = "allowed senders" if allow else "blocked senders"
            notices.success(request, f"{_shown(rule.sender)} is on your list of {where}.")
            return redirect("webmail:senders")
    rules = SenderRule.objects.filter(account=me).order_by("sender")
    entries = [(rule.pk, _shown(rule.sender), rule.allow) for rule in rules]
    context = {
        "allowed": [(pk, shown) for pk, shown, allow in entries if allow],
        "blocked": [(pk, shown) for pk, shown, allow in entries if not allow],
        "typed": typed,
    }
    return render(request, "webmail/senders.html", context, status=status)


@account_required
@require_POST
def remove(request: HttpRequest, rule_id: int) -> HttpResponse:
    if sender_rules.remove_sender_rule(account(request).pk, rule_id):
        notices.success(request, "Removed from your list.")
    return redirect("webmail:senders")
