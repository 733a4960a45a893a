"""Client auto-configuration: Thunderbird's clientConfig, Outlook's POX autodiscover, the MTA-STS policy (read
by postfix-mta-sts-resolver's parser), the Apple profile and the DNS records, parsed and checked for the
elements their formats require."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET

import pytest
from django.conf import settings as django_settings
from postfix_mta_sts_resolver.utils import parse_mta_sts_policy

from autoconfig.documents import AUTODISCOVER_OUTLOOK, AUTODISCOVER_RESPONSE, mta_sts_id
from autoconfig.records import client_records
from autoconfig.services import policy

pytestmark = pytest.mark.django_db
HOST = django_settings.MAILSITE_HOSTNAME


@pytest.fixture(autouse=True)
def hosts(settings) -> None:
    settings.ALLOWED_HOSTS = ["testserver", "autoconfig.example.com", "mta-sts.example.com", "mta-sts.other.test"]
    settings.MAILSITE_IMAPS_PORT, settings.MAILSITE_IMAP_PORT = 993, 143
    settings.MAILSITE_POP3S_PORT, settings.MAILSITE_POP3_PORT = 995, 110
    settings.MAILSITE_SMTPS_PORT, settings.MAILSITE_SUBMISSION_PORT = 465, 587


@pytest.fixture
def alice(make_account):
    return make_account("alice@example.com", display_name="Alice Liddell")


def servers(provider: ET.Element, tag: str) -> list[tuple[str | None, ...]]:
    found = []
    for server in provider.findall(tag):
        # Required children of incomingServer/outgoingServer in clientConfig 1.1.
        values = tuple(
            server.findtext(child) for child in ("hostname", "port", "socketType", "username", "authentication")
        )
        assert all(values), values
        found.append((server.get("type"), *values[:3]))
    return found


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.com", "testserver"),
        ("/mail/config-v1.1.xml", "autoconfig.example.com"),
        ("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=anyone%40EXAMPLE.com", "testserver"),
    ],
)
def test_thunderbird_autoconfig(client, alice, path: str, host: str) -> None:
    response = client.get(path, HTTP_HOST=host)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.tag == "clientConfig"
    assert root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None
    assert provider.get("id") == "example.com"
    assert provider.findtext("domain") == "example.com"
    assert provider.findtext("displayName")
    assert servers(provider, "incomingServer") == [
        ("imap", HOST, "993", "SSL"),
        ("imap", HOST, "143", "STARTTLS"),
        ("pop3", HOST, "995", "SSL"),
        ("pop3", HOST, "110", "STARTTLS"),
    ]
    assert servers(provider, "outgoingServer") == [("smtp", HOST, "465", "SSL"), ("smtp", HOST, "587", "STARTTLS")]
    assert provider.find("incomingServer/username").text == "%EMAILADDRESS%"  # type: ignore[union-attr]


def test_thunderbird_autoconfig_for_other_domains_is_404(client, alice) -> None:
    response = client.get("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40elsewhere.test")
    assert response.status_code == 404
    assert client.get("/.well-known/autoconfig/mail/config-v1.1.xml").status_code == 404


REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>{schema}</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"])
def test_outlook_autodiscover(client, alice, path: str) -> None:
    body = REQUEST.format(address="alice@example.com", schema=AUTODISCOVER_OUTLOOK)
    response = client.post(path, body, content_type="text/xml")
    assert response.status_code == 200
    ns = {"r": AUTODISCOVER_RESPONSE, "o": AUTODISCOVER_OUTLOOK}
    root = ET.fromstring(response.content)
    assert root.tag == f"{{{AUTODISCOVER_RESPONSE}}}Autodiscover"
    account = root.find("o:Response/o:Account", ns)
    assert account is not None
    assert account.findtext("o:AccountType", namespaces=ns) == "email"
    assert account.findtext("o:Action", namespaces=ns) == "settings"
    protocols = [
        {child.tag.split("}")[1]: child.text for child in protocol} for protocol in account.findall("o:Protocol", ns)
    ]
    assert [(p["Type"], p["Server"], p["Port"], p["SSL"], p.get("Encryption")) for p in protocols] == [
        ("IMAP", HOST, "993", "on", None),
        ("IMAP", HOST, "143", "on", "TLS"),
        ("SMTP", HOST, "465", "on", None),
        ("SMTP", HOST, "587", "on", "TLS"),
    ]
    assert {p["LoginName"] for p in protocols} == {"alice@example.com"}
    assert {p["AuthRequired"] for p in protocols} == {"on"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (REQUEST.format(address="bob@elsewhere.test", schema=AUTODISCOVER_OUTLOOK), "601"),
        ("<Autodiscover><Request/></Autodiscover>", "600"),
        ("not xml at all", "600"),
        ('<!DOCTYPE a [<!ENTITY x "alice@example.com">]><EMailAddress>&x;</EMailAddress>', "600"),
        ("<EMailAddress>alice@example.com</EMailAddress>" + " " * 20_000, "600"),
    ],
)
def test_autodiscover_errors(client, alice, body: str, code: str) -> None:
    response = client.post("/autodiscover/autodiscover.xml", body, content_type="text/xml")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert (
        root.findtext(
            f"{{{AUTODISCOVER_RESPONSE}}}Response/{{{AUTODISCOVER_RESPONSE}}}Error/{{{AUTODISCOVER_RESPONSE}}}ErrorCode"
        )
        == code
    )


def test_autodiscover_is_post_only(client) -> None:
    assert client.get("/autodiscover/autodiscover.xml").status_code == 405


@pytest.mark.parametrize("mode", ["testing", "enforce"])
def test_mta_sts_policy(client, alice, settings, mode: str) -> None:
    settings.MAILSITE_MTA_STS_MODE = mode
    response = client.get("/.well-known/mta-sts.txt", HTTP_HOST="mta-sts.example.com")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.endswith(b"\r\n")
    parsed = parse_mta_sts_policy(response.content.decode("ascii"))
    assert parsed == {"version": "STSv1", "mode": mode, "mx": [HOST], "max_age": "604800"}


def test_mta_sts_policy_only_on_our_mta_sts_hosts(client, alice) -> None:
    assert client.get("/.well-known/mta-sts.txt").status_code == 404
    assert client.get("/.well-known/mta-sts.txt", HTTP_HOST="mta-sts.other.test").status_code == 404


def test_apple_profile(client, alice) -> None:
    assert client.get("/mail.mobileconfig").status_code == 302  # to the sign-in page
    client.force_login(alice)
    response = client.get("/mail.mobileconfig")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-apple-aspen-config"
    assert response["Content-Disposition"] == 'attachment; filename="mail.mobileconfig"'
    profile = plistlib.loads(response.content)
    for key in ("PayloadType", "PayloadVersion", "PayloadIdentifier", "PayloadUUID", "PayloadDisplayName"):
        assert profile[key], key
    assert profile["PayloadType"] == "Configuration"
    (mail,) = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == mail["IncomingMailServerUsername"] == "alice@example.com"
    assert mail["EmailAccountName"] == "Alice Liddell"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == (HOST, 993)
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == (HOST, 465)
    assert mail["IncomingMailServerUseSSL"] is mail["OutgoingMailServerUseSSL"] is True
    # The same profile again: the same UUIDs, so it replaces the installed one.
    assert plistlib.loads(client.get("/mail.mobileconfig").content) == profile


def test_dns_records() -> None:
    records = {(name, kind): value for _, name, kind, value in client_records("example.com")}
    host = HOST + "."
    assert records["_submissions._tcp.example.com", "SRV"] == f"0 1 465 {host}"
    assert records["_submission._tcp.example.com", "SRV"] == f"10 1 587 {host}"
    assert records["_imaps._tcp.example.com", "SRV"] == f"0 1 993 {host}"
    assert records["_pop3s._tcp.example.com", "SRV"] == f"20 1 995 {host}"
    assert records["autoconfig.example.com", "CNAME"] == host
    assert records["mta-sts.example.com", "CNAME"] == host
    assert records["_mta-sts.example.com", "TXT"] == f"v=STSv1; id={mta_sts_id(policy())}"
    assert records["_smtp._tls.example.com", "TXT"] == "v=TLSRPTv1; rua=mailto:postmaster@example.com"
    assert len(mta_sts_id(policy())) == 32
