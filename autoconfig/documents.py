"""The documents clients fetch, built from a `Service` list without Django or I/O.

Thunderbird: clientConfig 1.1 (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat).
Outlook: the POX autodiscover response schema 2006a ([MS-OXDSCLI] 2.2.4). Apple: a configuration profile with
one com.apple.mail.managed payload (Apple's Configuration Profile Reference). MTA-STS: RFC 8461 3.2.
"""

from __future__ import annotations

import hashlib
import plistlib
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

AUTODISCOVER_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
AUTODISCOVER_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MTA_STS_MODES = ("enforce", "testing", "none")


@dataclass(frozen=True)
class Service:
    protocol: str  # "imap", "pop3", "smtp"
    port: int
    implicit_tls: bool  # True: TLS from the first byte (RFC 8314); False: STARTTLS


def _element(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attributes)
    if text is not None:
        child.text = text
    return child


def _xml(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def thunderbird(domain: str, hostname: str, services: list[Service]) -> bytes:
    """clientConfig for `domain`: incoming servers in the order given (preferred first), then outgoing."""
    root = ET.Element("clientConfig", version="1.1")
    provider = _element(root, "emailProvider", id=domain)
    _element(provider, "domain", domain)
    _element(provider, "displayName", f"{domain} mail")
    _element(provider, "displayShortName", domain)
    for service in services:
        tag = "outgoingServer" if service.protocol == "smtp" else "incomingServer"
        server = _element(provider, tag, type=service.protocol)
        _element(server, "hostname", hostname)
        _element(server, "port", str(service.port))
        _element(server, "socketType", "SSL" if service.implicit_tls else "STARTTLS")
        _element(server, "authentication", "password-cleartext")
        _element(server, "username", "%EMAILADDRESS%")
    return _xml(root)


def autodiscover(address: str, hostname: str, services: list[Service]) -> bytes:
    """The POX answer: one Protocol element per service, settings for the address asked about."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE)
    response = _element(root, "Response", xmlns=AUTODISCOVER_OUTLOOK)
    account = _element(response, "Account")
    _element(account, "AccountType", "email")
    _element(account, "Action", "settings")
    for service in services:
        protocol = _element(account, "Protocol")
        _element(protocol, "Type", service.protocol.upper())
        _element(protocol, "Server", hostname)
        _element(protocol, "Port", str(service.port))
        _element(protocol, "LoginName", address)
        _element(protocol, "DomainRequired", "off")
        _element(protocol, "SPA", "off")
        # SSL on with Encryption TLS means STARTTLS to Outlook; SSL alone, TLS from the first byte.
        _element(protocol, "SSL", "on")
        if not service.implicit_tls:
            _element(protocol, "Encryption", "TLS")
        _element(protocol, "AuthRequired", "on")
        if service.protocol == "smtp":
            _element(protocol, "UsePOPAuth", "off")
            _element(protocol, "SMTPLast", "off")
    return _xml(root)


def autodiscover_error(code: int, message: str) -> bytes:
    """An autodiscover error response (600 Invalid Request, 601 provider not available for the address)."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE)
    response = _element(root, "Response")
    error = _element(response, "Error", Id="0", Time="00:00:00")
    _element(error, "ErrorCode", str(code))
    _element(error, "Message", message)
    _element(error, "DebugData")
    return _xml(root)


def apple_profile(address: str, display_name: str, hostname: str, incoming: Service, outgoing: Service) -> bytes:
    """A .mobileconfig with one mail account. The UUIDs derive from the address and host, so downloading it
    again replaces the installed profile instead of adding a second one."""
    identifier = ".".join(reversed(hostname.split("."))) + ".mailsite.mail"
    base = uuid.uuid5(uuid.NAMESPACE_URL, f"mailsite:{hostname}:{address}")
    mail = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.account.{base}",
        "PayloadUUID": str(uuid.uuid5(base, "account")).upper(),
        "PayloadDisplayName": address,
        "EmailAccountDescription": address,
        "EmailAccountName": display_name or address,
        "EmailAccountType": "EmailTypeIMAP" if incoming.protocol == "imap" else "EmailTypePOP",
        "EmailAddress": address,
        "IncomingMailServerHostName": hostname,
        "IncomingMailServerPortNumber": incoming.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": hostname,
        "OutgoingMailServerPortNumber": outgoing.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.{base}",
        "PayloadUUID": str(base).upper(),
        "PayloadDisplayName": f"Mail: {address}",
        "PayloadDescription": f"Sets up the mail account {address} on {hostname}.",
        "PayloadContent": [mail],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def mta_sts_policy(mode: str, mx_hosts: list[str], max_age: int) -> bytes:
    """The policy file (RFC 8461 3.2): CRLF-terminated "key: value" lines."""
    if mode not in MTA_STS_MODES:
        raise ValueError(f"MTA-STS mode must be one of {', '.join(MTA_STS_MODES)}")
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {host}" for host in mx_hosts), f"max_age: {max_age}"]
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def mta_sts_id(policy: bytes) -> str:
    """The record's id (RFC 8461 3.1: 1-32 alphanumerics): changes whenever the policy does."""
    return hashlib.sha256(policy).hexdigest()[:32]
