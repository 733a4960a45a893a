"""DNS records a domain publishes so that clients find the server from the address alone and senders
require TLS: RFC 6186 / RFC 8314 SRV records, autoconfig/autodiscover names, MTA-STS (RFC 8461 3.1) and
TLS-RPT (RFC 8460 3)."""

from __future__ import annotations

from django.conf import settings

from autoconfig.documents import mta_sts_id
from autoconfig.services import policy

# (service label, setting of the port, priority): implicit TLS preferred (RFC 8314 5.1).
_SRV = [
    ("_submissions._tcp", "MAILSITE_SMTPS_PORT", 0),
    ("_submission._tcp", "MAILSITE_SUBMISSION_PORT", 10),
    ("_imaps._tcp", "MAILSITE_IMAPS_PORT", 0),
    ("_imap._tcp", "MAILSITE_IMAP_PORT", 10),
    ("_pop3s._tcp", "MAILSITE_POP3S_PORT", 20),
    ("_pop3._tcp", "MAILSITE_POP3_PORT", 30),
]


def client_records(domain: str) -> list[tuple[str, str, str, str]]:
    """(what, name, type, value) rows for `domain` (A-label form)."""
    host = settings.MAILSITE_HOSTNAME.rstrip(".") + "."
    https_port = settings.MAILSITE_HTTPS_PORT or 443
    rows = [
        (f"SRV {label[1:].split('.')[0]}", f"{label}.{domain}", "SRV", f"{priority} 1 {getattr(settings, port)} {host}")
        for label, port, priority in _SRV
    ]
    rows += [
        ("Thunderbird autoconfig", f"autoconfig.{domain}", "CNAME", host),
        ("Outlook autodiscover", f"autodiscover.{domain}", "CNAME", host),
        ("Outlook autodiscover", f"_autodiscover._tcp.{domain}", "SRV", f"0 1 {https_port} {host}"),
        ("MTA-STS policy host", f"mta-sts.{domain}", "CNAME", host),
        ("MTA-STS", f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={mta_sts_id(policy())}"),
        ("TLS-RPT", f"_smtp._tls.{domain}", "TXT", f"v=TLSRPTv1; rua=mailto:postmaster@{domain}"),
    ]
    return rows
