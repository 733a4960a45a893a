"""The answer when the database cannot be reached: 503 with a clear message, never a bare 500.

Installed as the site's `handler500`, so it also covers what fails before a view runs (the session lookup,
saving the session). The page is rendered without the request's context, which would read the signed-in user
from the database that is down. A message posted from the compose page without its script comes back in the
page, so the user can copy it; with the script the page never leaves the form (see webmail.js).
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.defaults import server_error as default_server_error

UNAVAILABLE = "The mail store cannot be reached right now, so nothing was saved or sent. Try again in a moment."
RETRY_AFTER_SECONDS = 10


def database_unreachable(error: BaseException | None) -> bool:
    return isinstance(error, OperationalError | InterfaceError)


def server_error(request: HttpRequest) -> HttpResponse:
    if not database_unreachable(sys.exc_info()[1]):
        return default_server_error(request)
    if request.headers.get("X-Requested-With") == "fetch":
        response: HttpResponse = JsonResponse({"error": UNAVAILABLE}, status=503)
    else:
        posted = request.POST if request.method == "POST" else {}
        context = {
            "message": UNAVAILABLE,
            "kept": {name: posted.get(name, "") for name in ("to", "cc", "bcc", "subject", "body")},
        }
        response = HttpResponse(render_to_string("webmail/unavailable.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
