"""A strict Content-Security-Policy for webmail pages (the admin keeps Django's defaults).

Pages load only this site's own scripts, styles and images; mail bodies live in sandboxed frames that set
their own, stricter policy (see `webmail.sanitize.frame_policy`).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = request.resolver_match
        if match is not None and match.app_name == "webmail" and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = PAGE_POLICY
        return response
