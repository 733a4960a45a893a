"""What we advertise: our host name, the client ports as configured, and which domains are ours."""

from __future__ import annotations

from django.conf import settings

from autoconfig.documents import Service, mta_sts_policy
from mailboxes.models import Domain
from mailcore.idn import ascii_domain


def client_services() -> list[Service]:
    """Preferred first: implicit TLS before STARTTLS (RFC 8314 3), IMAP before POP3."""
    return [
        Service("imap", settings.MAILSITE_IMAPS_PORT, True),
        Service("imap", settings.MAILSITE_IMAP_PORT, False),
        Service("pop3", settings.MAILSITE_POP3S_PORT, True),
        Service("pop3", settings.MAILSITE_POP3_PORT, False),
        Service("smtp", settings.MAILSITE_SMTPS_PORT, True),
        Service("smtp", settings.MAILSITE_SUBMISSION_PORT, False),
    ]


def our_domain(name: str) -> str | None:
    """`name` in A-label form if it is one of our active domains, else None."""
    domain = ascii_domain(name)
    return domain if Domain.objects.filter(name=domain, active=True).exists() else None


def policy() -> bytes:
    """Our MTA-STS policy: every domain's MX is this host."""
    return mta_sts_policy(
        settings.MAILSITE_MTA_STS_MODE, [settings.MAILSITE_HOSTNAME], settings.MAILSITE_MTA_STS_MAX_AGE
    )
