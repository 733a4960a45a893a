"""Auto-configuration endpoints. Nothing here tells whether an address exists: answers depend only on
whether its domain is ours."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from autoconfig import documents
from autoconfig.services import client_services, our_domain, policy
from webmail.views.common import account, account_required

XML = "text/xml; charset=utf-8"
_AUTODISCOVER_MAX = 16 * 1024
# The request is tiny and fixed ([MS-OXDSCLI] 2.2.3); reading one element by pattern avoids feeding untrusted
# XML (entities and all) to a parser.
_EMAIL = re.compile(rb"<(?:\w+:)?EMailAddress>\s*([^<\s]+@[^<\s]+)\s*</(?:\w+:)?EMailAddress>")


def _host_without_port(request: HttpRequest) -> str:
    return request.get_host().rsplit(":", 1)[0] if "]" not in request.get_host() else request.get_host()


@require_GET
def thunderbird(request: HttpRequest) -> HttpResponse:
    """`/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=...` on the mail domain, or
    `/mail/config-v1.1.xml` on `autoconfig.<domain>`."""
    address = request.GET.get("emailaddress", "")
    host = _host_without_port(request)
    name = address.rpartition("@")[2] if "@" in address else host.removeprefix("autoconfig.")
    domain = our_domain(name)
    if domain is None:
        raise Http404("not a domain of ours")
    body = documents.thunderbird(domain, settings.MAILSITE_HOSTNAME, client_services())
    return HttpResponse(body, content_type=XML)


@csrf_exempt
@require_http_methods(["POST"])
def autodiscover(request: HttpRequest) -> HttpResponse:
    """Outlook's POX autodiscover: POST /autodiscover/autodiscover.xml with the address in EMailAddress."""
    body = request.body[: _AUTODISCOVER_MAX + 1]
    match = _EMAIL.search(body) if len(body) <= _AUTODISCOVER_MAX else None
    if match is None:
        return HttpResponse(documents.autodiscover_error(600, "Invalid Request"), content_type=XML)
    address = match.group(1).decode("utf-8", "replace")
    if our_domain(address.rpartition("@")[2]) is None:
        return HttpResponse(documents.autodiscover_error(601, "Provider is not available"), content_type=XML)
    services = [service for service in client_services() if service.protocol != "pop3"]
    return HttpResponse(documents.autodiscover(address, settings.MAILSITE_HOSTNAME, services), content_type=XML)


@require_GET
def mta_sts(request: HttpRequest) -> HttpResponse:
    """The MTA-STS policy, at `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 3.3)."""
    host = _host_without_port(request)
    if not host.startswith("mta-sts.") or our_domain(host.removeprefix("mta-sts.")) is None:
        raise Http404("no MTA-STS policy for this host")
    return HttpResponse(policy(), content_type="text/plain; charset=us-ascii")


@account_required
@require_GET
def apple_profile(request: HttpRequest) -> HttpResponse:
    """The signed-in account as an Apple configuration profile (IMAP and submission, implicit TLS)."""
    user = account(request)
    services = client_services()
    incoming = next(service for service in services if service.protocol == "imap" and service.implicit_tls)
    outgoing = next(service for service in services if service.protocol == "smtp" and service.implicit_tls)
    body = documents.apple_profile(user.address, user.display_name, settings.MAILSITE_HOSTNAME, incoming, outgoing)
    response = HttpResponse(body, content_type="application/x-apple-aspen-config")
    response["Content-Disposition"] = 'attachment; filename="mail.mobileconfig"'
    return response
