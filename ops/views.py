"""`/healthz`, `/readyz` and `/metrics` on the web listeners."""

from __future__ import annotations

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
