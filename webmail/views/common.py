"""What every webmail view needs: the signed-in account, and its folders and messages (never another's)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from mailboxes.models import Account, Mailbox, Message, Role
from webmail import preferences


def account_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in accounts only; others go to the webmail sign-in page (not the admin's)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            if request.headers.get("X-Requested-With") == "fetch":
                return HttpResponse("Signed out", status=401)
            return redirect(f"{reverse('webmail:login')}?{urlencode({'next': request.get_full_path()})}")
        preferences.apply(request, account(request))
        return view(request, *args, **kwargs)

    return wrapper


def account(request: HttpRequest) -> Account:
    user = request.user
    assert isinstance(user, Account)
    return user


def folder_of(request: HttpRequest, folder_id: int) -> Mailbox:
    folder = Mailbox.objects.filter(account=account(request), pk=folder_id).first()
    if folder is None:
        raise Http404("No such folder")
    return folder


def role_folder(request: HttpRequest, role: Role) -> Mailbox:
    folder = Mailbox.objects.filter(account=account(request), role=role).first()
    if folder is None:
        raise Http404(f"The {role.label} folder is missing")
    return folder


def message_of(request: HttpRequest, message_id: int) -> Message:
    message = Message.objects.filter(account=account(request), pk=message_id).select_related("mailbox").first()
    if message is None:
        raise Http404("No such message")
    return message


def page_size(request: HttpRequest) -> int:
    return request.preferences.page_size  # type: ignore[attr-defined]


def page_number(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1
