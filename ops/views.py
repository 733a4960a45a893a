"""`/healthz`, `/readyz` and `/metrics` on the web listeners."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops import checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers; nothing else is asked (a database outage must not get every web process killed)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when every check passes, else 503; each check with its reason."""
    results = checks.readiness(settings.MAILSITE_READY_LISTENERS)
    ready = all(result.ok for result in results)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {result.name: "ok" if result.ok else result.reason for result in results},
    }
    return JsonResponse(body, status=200 if ready else 503)


# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its socket's address.
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _from_loopback(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return address.is_loopback and not any(header in request.META for header in _FORWARDED)


def _bearer_ok(request: HttpRequest) -> bool:
    token = settings.MAILSITE_METRICS_TOKEN
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format: open to loopback, else `Authorization: Bearer $MAILSITE_METRICS_TOKEN`."""
    if not (_from_loopback(request) or _bearer_ok(request)):
        if not settings.MAILSITE_METRICS_TOKEN:
            return HttpResponse("metrics are served to loopback only (set MAILSITE_METRICS_TOKEN)\n", status=403)
        response = HttpResponse("a bearer token is needed\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from ops import metrics as collected  # sets up prometheus-client's multiprocess mode first

    return HttpResponse(collected.exposition(), content_type=collected.CONTENT_TYPE)
