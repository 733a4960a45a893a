"""The account's security settings (password, app passwords, two-factor sign-in, recent sign-ins) and the
second step of signing in when two-factor sign-in is on.

Secrets (a new app password, recovery codes) are rendered into the response that made them and nowhere else:
never into the session, a notice or a redirect.
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.contrib import messages as notices
from django.contrib.auth import login as start_session
from django.contrib.auth import update_session_auth_hash
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from credentials import actions as credentials
from credentials import passkeys, totp
from credentials.models import (
    MAIL_PROTOCOLS,
    AppPassword,
    Passkey,
    RecoveryCode,
    SecurityOptions,
    SignIn,
    TotpDevice,
    WebSession,
)
from mailboxes import actions
from mailboxes.actions import auth
from mailboxes.models import Account
from webmail.views.common import account, account_required

PENDING = "mailsite_second_factor"  # session key: who passed the password step, where to go, since when
PENDING_SECONDS = 300
CEREMONY = "mailsite_webauthn"  # session key: the challenge of the passkey ceremony in progress, used once
MIN_PASSWORD_LENGTH = 10
SIGN_INS_SHOWN = 20


def _page(request: HttpRequest, status: int = 200, **extra: object) -> HttpResponse:
    user = account(request)
    context = {
        "app_passwords": AppPassword.objects.filter(account=user),
        "protocols": MAIL_PROTOCOLS,
        "require_app_passwords": SecurityOptions.objects.filter(account=user, require_app_passwords=True).exists(),
        "totp_on": credentials.totp_enabled(user.pk),
        "passkeys": Passkey.objects.filter(account=user),
        "recovery_left": RecoveryCode.objects.filter(account=user, used__isnull=True).count(),
        "sign_ins": SignIn.objects.filter(account=user).order_by("-created")[:SIGN_INS_SHOWN],
        "web_sessions": credentials.web_sessions(user),
        "this_session": request.session.session_key,
        **extra,
    }
    return render(request, "webmail/security.html", context, status=status)


@account_required
@never_cache
def security(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _password_checks(request: HttpRequest, password: str) -> bool:
    """The current password, checked and throttled exactly as a sign-in (wrong tries count as failures)."""
    result = actions.authenticate(
        account(request).address, password, remote_ip=request.META.get("REMOTE_ADDR"), protocol="web"
    )
    if result.account is None:
        time.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
    return result.account is not None


@require_POST
@sensitive_post_parameters("current", "new", "repeat")
@account_required
def change_password(request: HttpRequest) -> HttpResponse:
    current, new, repeat = (request.POST.get(name, "") for name in ("current", "new", "repeat"))
    if new != repeat:
        return _page(request, 400, password_error="The two new passwords differ.")
    if len(new) < MIN_PASSWORD_LENGTH:
        return _page(request, 400, password_error=f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if not _password_checks(request, current):
        return _page(request, 403, password_error="The current password is wrong.")
    user = account(request)
    actions.set_password(user, new)
    update_session_auth_hash(request, user)  # this session stays signed in; the others end
    notices.success(request, "Password changed.")
    return redirect("webmail:security")


@require_POST
@account_required
def app_password_create(request: HttpRequest) -> HttpResponse:
    try:
        row, secret = credentials.create_app_password(
            account(request), request.POST.get("name", ""), request.POST.getlist("protocols")
        )
    except credentials.CredentialError as exc:
        return _page(request, 400, app_password_error=str(exc).capitalize() + ".")
    return _page(request, new_app_password=secret, new_app_password_name=row.name)


@require_POST
@account_required
def app_password_revoke(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "")
    try:
        credentials.revoke_app_password(account(request), name)
    except credentials.CredentialError as exc:
        notices.error(request, str(exc).capitalize() + ".")
    else:
        notices.success(request, f"App password {name} revoked; clients using it were signed out.")
    return redirect("webmail:security")


@require_POST
@account_required
def require_app_passwords(request: HttpRequest) -> HttpResponse:
    required = request.POST.get("required") == "on"
    credentials.set_require_app_passwords(account(request), required)
    notices.success(
        request, "Mail clients now need app passwords." if required else "Mail clients may use your password."
    )
    return redirect("webmail:security")


@account_required
@never_cache
def totp_setup(request: HttpRequest) -> HttpResponse:
    """GET: a new secret and its QR code. POST: the first code from the app turns two-factor sign-in on."""
    user = account(request)
    if request.method == "POST":
        try:
            codes = credentials.confirm_totp(user, request.POST.get("code", ""))
        except credentials.CredentialError as exc:
            device = TotpDevice.objects.filter(account=user, confirmed__isnull=True).first()
            if device is None:
                return redirect("webmail:totp_setup")
            return _setup_page(request, device.secret, error=str(exc).capitalize() + ".", status=400)
        return render(request, "webmail/security_recovery.html", {"codes": codes, "first": True})
    try:
        secret = credentials.start_totp(user)
    except credentials.CredentialError as exc:
        notices.error(request, str(exc).capitalize() + ".")
        return redirect("webmail:security")
    return _setup_page(request, secret)


def _setup_page(request: HttpRequest, secret: str, *, error: str = "", status: int = 200) -> HttpResponse:
    uri = totp.provisioning_uri(secret, account(request).address, settings.MAILSITE_HOSTNAME)
    context = {"secret": secret, "uri": uri, "qr": totp.qr_svg(uri), "error": error}
    return render(request, "webmail/security_totp.html", context, status=status)


@require_POST
@sensitive_post_parameters("current")
@account_required
def totp_disable(request: HttpRequest) -> HttpResponse:
    if not _password_checks(request, request.POST.get("current", "")):
        return _page(request, 403, totp_error="The current password is wrong.")
    credentials.disable_totp(account(request))
    notices.success(request, "Two-factor sign-in is off.")
    return redirect("webmail:security")


@require_POST
@account_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    if not credentials.totp_enabled(account(request).pk):
        return redirect("webmail:security")
    codes = credentials.new_recovery_codes(account(request))
    return render(request, "webmail/security_recovery.html", {"codes": codes, "first": False})


# --- Signing in: the second step ------------------------------------------------------------------------------


def begin_second_factor(request: HttpRequest, user: Account, next_url: str) -> HttpResponse:
    """Called by the sign-in view once the password was right for an account with two-factor sign-in on."""
    request.session.cycle_key()
    request.session[PENDING] = {"account": user.pk, "next": next_url, "since": time.time()}
    return redirect("webmail:login_totp")


def finish_sign_in(request: HttpRequest, user: Account, method: str) -> None:
    start_session(request, user, backend="django.contrib.auth.backends.ModelBackend")
    remote_ip = request.META.get("REMOTE_ADDR")
    credentials.record_sign_in(user.pk, "web", remote_ip, method)
    assert request.session.session_key is not None  # login() saved the session under a new key
    credentials.remember_web_session(
        user.pk, request.session.session_key, remote_ip, request.headers.get("User-Agent", "")
    )


@require_POST
@account_required
def end_session(request: HttpRequest) -> HttpResponse:
    chosen = WebSession.objects.filter(account=account(request), pk=request.POST.get("session", "")).first()
    if chosen is not None and chosen.session_key == request.session.session_key:
        notices.error(request, "Use Sign out to end this session.")
    elif chosen is not None and credentials.end_web_session(account(request), chosen.pk):
        notices.success(request, "That browser is signed out.")
    return redirect("webmail:security")


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_totp(request: HttpRequest) -> HttpResponse:
    user, next_url = _pending_account(request)
    if user is None:
        request.session.pop(PENDING, None)
        return redirect("webmail:login")
    error, status = "", 200
    if request.method == "POST":
        remote_ip = request.META.get("REMOTE_ADDR")
        # Throttled and counted exactly like passwords: the same failure rows, limits and pause.
        found = auth.candidate(user.address, remote_ip=remote_ip)
        method = None if found.throttled else credentials.accept_second_factor(user.pk, request.POST.get("code", ""))
        result = auth.record(found, method is not None, remote_ip=remote_ip, protocol="web")
        if method is not None and result.account is not None:
            del request.session[PENDING]
            finish_sign_in(request, user, f"password + {method}")
            return redirect(next_url or "webmail:home")
        time.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
        if result.throttled:
            error, status = "Too many failed sign-ins. Wait a few minutes and try again.", 429
        else:
            error, status = "That code is wrong or was used already.", 401
    context = {
        "error": error,
        "totp_on": credentials.totp_enabled(user.pk),
        "passkeys_on": Passkey.objects.filter(account=user).exists(),
    }
    return render(request, "webmail/login_totp.html", context, status=status)


# --- Passkeys (credentials/passkeys.py; the browser side is webmail/static/webmail/passkeys.js) -------------------


def _relying_party(request: HttpRequest) -> tuple[str, str]:
    """The RP id and origin the browser uses: this request's host (ALLOWED_HOSTS vetted it) and scheme."""
    host = request.get_host()
    return split_domain_port(host)[0], f"{request.scheme}://{host}"


def _start(request: HttpRequest, ceremony: passkeys.Ceremony) -> HttpResponse:
    request.session[CEREMONY] = ceremony.challenge.hex()
    return HttpResponse(ceremony.options_json, content_type="application/json")


def _answer(request: HttpRequest) -> tuple[str, bytes | None]:
    """The browser's credential (JSON text) and the challenge it must answer, which is spent now."""
    try:
        body = json.loads(request.body)
        credential = json.dumps(body["credential"])
    except (ValueError, KeyError, TypeError):
        credential = ""
    challenge = request.session.pop(CEREMONY, None)
    return credential, bytes.fromhex(challenge) if challenge else None


@require_POST
@account_required
def passkey_options(request: HttpRequest) -> HttpResponse:
    return _start(request, passkeys.registration(account(request), _relying_party(request)[0]))


@require_POST
@account_required
def passkey_add(request: HttpRequest) -> HttpResponse:
    credential, challenge = _answer(request)
    try:
        name = str(json.loads(request.body).get("name", ""))
    except (ValueError, AttributeError):
        name = ""
    if challenge is None:
        return JsonResponse({"error": "Start again: the request to add a passkey expired."}, status=400)
    rp_id, origin = _relying_party(request)
    try:
        added = passkeys.register(account(request), name, credential, challenge=challenge, rp_id=rp_id, origin=origin)
    except credentials.CredentialError as exc:
        return JsonResponse({"error": str(exc).capitalize() + "."}, status=400)
    notices.success(request, f"Passkey {added.name} added.")
    return JsonResponse({"redirect": reverse("webmail:security")})


@require_POST
@account_required
def passkey_remove(request: HttpRequest) -> HttpResponse:
    removed, _ = Passkey.objects.filter(account=account(request), pk=request.POST.get("passkey", "")).delete()
    if removed:
        notices.success(request, "Passkey removed.")
    return redirect("webmail:security")


def _pending_account(request: HttpRequest) -> tuple[Account | None, str]:
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["since"] > PENDING_SECONDS:
        return None, ""
    return Account.objects.filter(pk=pending["account"], is_active=True).first(), pending["next"]


@require_POST
def login_passkey_options(request: HttpRequest) -> HttpResponse:
    user, _ = _pending_account(request)
    if user is None:
        return JsonResponse({"error": "Start again with your password."}, status=400)
    return _start(request, passkeys.authentication(user.pk, _relying_party(request)[0]))


@require_POST
def login_passkey(request: HttpRequest) -> HttpResponse:
    user, next_url = _pending_account(request)
    if user is None:
        return JsonResponse({"error": "Start again with your password."}, status=400)
    credential, challenge = _answer(request)
    remote_ip = request.META.get("REMOTE_ADDR")
    found = auth.candidate(user.address, remote_ip=remote_ip)  # throttled and counted like passwords
    rp_id, origin = _relying_party(request)
    ok = (
        not found.throttled
        and challenge is not None
        and passkeys.authenticate(user.pk, credential, challenge=challenge, rp_id=rp_id, origin=origin)
    )
    result = auth.record(found, ok, remote_ip=remote_ip, protocol="web")
    if ok and result.account is not None:
        del request.session[PENDING]
        finish_sign_in(request, user, "password + passkey")
        return JsonResponse({"redirect": next_url or reverse("webmail:home")})
    time.sleep(settings.MAILSITE_AUTH_FAILURE_DELAY)
    if result.throttled:
        return JsonResponse({"error": "Too many failed sign-ins. Wait a few minutes and try again."}, status=429)
    return JsonResponse({"error": "That passkey was not accepted."}, status=401)
