"""Signing in with the mail account's address and password, throttled like every protocol."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout as end_session
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from credentials import actions as credentials
from mailboxes import actions
from webmail import preferences
from webmail.forms import LoginForm
from webmail.views import security


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = ""
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result = actions.authenticate(
            form.cleaned_data["address"],
            form.cleaned_data["password"],
            remote_ip=request.META.get("REMOTE_ADDR"),
            protocol="web",
        )
        if result.account is not None:
            # The browser's own zone (webmail.js fills it in) becomes the user's unless they chose one.
            preferences.detected(result.account, request.POST.get("time_zone", ""))
            if credentials.second_factor_required(result.account.pk):  # the second step: views/security.py
                return security.begin_second_factor(request, result.account, next_url)
            security.finish_sign_in(request, result.account, "password")
            return redirect(next_url or "webmail:home")
        # The same pause every protocol makes, so guessing is slow here too.
        time.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
        if result.throttled:
            form.add_error(None, "Too many failed sign-ins. Wait a few minutes and try again.")
            status = 429
        else:
            form.add_error(None, "The address or password is wrong.")
            status = 401
    return render(request, "webmail/login.html", {"form": form, "next": next_url}, status=status)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    end_session(request)
    return redirect("webmail:login")
