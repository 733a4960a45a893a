"""Per-destination routes (MAILSITE_RELAY_ROUTES), as Postfix's transport_maps with smtp_sasl_password_maps: mail
for a domain, or for every domain (a default smarthost), goes to a given host and port instead of the domain's MX
hosts, with TLS required and AUTH PLAIN or LOGIN, so a site can send through a provider's smarthost.

    MAILSITE_RELAY_ROUTES="example.net=smtp.provider.example:587 starttls file:/run/secrets/provider,
                           .example.org=relay.example.org:25, *=smarthost.example:465 tls env:SMARTHOST_LOGIN"

An entry is `DESTINATION=HOST:PORT [starttls|tls|none] [file:PATH|env:NAME]`. DESTINATION is a domain, `.domain`
for its subdomains, or `*` for every domain without a route of its own. `starttls` (the default) requires
STARTTLS with a certificate valid for HOST (RFC 3207, RFC 8314 4.1); `tls` is TLS from the first byte (RFC 8314
3.3, usually port 465); `none` sends in the clear and takes no credentials. Credentials are `user:password` on the
first line of the file, or in the environment variable; they are read when a session starts, never at start-up,
and never logged. This module is pure: parsing and lookup only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class Smarthost:
    host: str
    port: int
    security: str = "starttls"
    credentials: str = ""  # where the login is: "file:/path" or "env:NAME"; "" for none

    @property
    def key(self) -> str:
        """The destination's name for concurrency and dead-destination state: the host and port, shared by
        every domain routed there."""
        return f"[{self.host}]:{self.port}"


def parse_routes(text: str) -> dict[str, Smarthost]:
    """{destination: Smarthost} from the setting's text; ValueError saying which entry is wrong."""
    routes: dict[str, Smarthost] = {}
    for entry in (item.strip() for item in text.replace("\n", ",").split(",")):
        if not entry:
            continue
        destination, _, target = entry.partition("=")
        destination = destination.strip().lower().rstrip(".")
        words = target.split()
        if not destination or not words or len(words) > 3:
            raise ValueError(f"{entry!r}: write DESTINATION=HOST:PORT [starttls|tls|none] [file:PATH|env:NAME]")
        host, _, port = words[0].rpartition(":")
        host = host.strip("[]").lower()
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r}: the target must be HOST:PORT, such as smtp.example.net:587")
        security, credentials = "starttls", ""
        for word in words[1:]:
            if word.lower() in SECURITY:
                security = word.lower()
            elif word.startswith(("file:", "env:")) and word.partition(":")[2]:
                credentials = word
            else:
                raise ValueError(f"{entry!r}: {word!r} is neither starttls/tls/none nor file:PATH or env:NAME")
        if credentials and security == "none":
            raise ValueError(f"{entry!r}: credentials are never sent without TLS (use starttls or tls)")
        routes[destination] = Smarthost(host, int(port), security, credentials)
    return routes


def route_for(routes: Mapping[str, Smarthost], domain: str) -> Smarthost | None:
    """The route of `domain`: its own entry, else the nearest `.parent` entry, else `*`; None: the MX hosts."""
    domain = domain.lower().rstrip(".")
    if domain in routes:
        return routes[domain]
    labels = domain.split(".")
    for start in range(1, len(labels)):
        parent = "." + ".".join(labels[start:])
        if parent in routes:
            return routes[parent]
    return routes.get("*")


class CredentialsUnreadable(Exception):
    """The route's login could not be read; the message names the source, never a secret."""


def read_credentials(source: str, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(user, password) from "file:/path" (first line) or "env:NAME", each holding "user:password"."""
    kind, _, where = source.partition(":")
    if kind == "env":
        text = environ.get(where)
        if text is None:
            raise CredentialsUnreadable(f"environment variable {where} is not set")
    else:
        try:
            text = Path(where).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise CredentialsUnreadable(f"{where}: {why}") from None
    user, colon, password = text.splitlines()[0].partition(":") if text.strip() else ("", "", "")
    if not colon or not user:
        raise CredentialsUnreadable(f"{source} does not hold user:password on its first line")
    return user, password
