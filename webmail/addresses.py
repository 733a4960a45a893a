"""Address fields as users type them: "Alice <alice@example.com>, bob@example.org"."""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses

# Characters that end a line for some reader of the message (str.splitlines, the email package's folding, or
# RFC 5322 itself). None of them may reach a header.
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$", re.I)
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


class AddressError(ValueError):
    """A field the user typed cannot be used; the message is safe to show."""


def has_line_break(value: str) -> bool:
    return any(ch in LINE_BREAKS for ch in value)


def flatten(value: str) -> str:
    """A copied header value (a decoded Subject or display name) on one line: control characters, line breaks
    included, become spaces. Used for values the user did not type, such as the subject of a reply."""
    return " ".join(_CONTROL.sub(" ", value).split())


def valid_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return bool(_DOMAIN.match(domain))


def split_addresses(text: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of a comma-separated field, best effort and never raising."""
    return [(name, address) for name, address in getaddresses([text.replace("\n", " ")]) if address]


def parse_field(text: str, label: str) -> list[Address]:
    """The addresses of a To/Cc/Bcc field, or AddressError naming the first bad entry."""
    if has_line_break(text):
        raise AddressError(f"{label}: line breaks are not allowed")
    result: list[Address] = []
    for raw in _split_commas(text):
        pairs = getaddresses([raw])
        if len(pairs) != 1 or not pairs[0][1] or not valid_address(pairs[0][1]):
            raise AddressError(f"{label}: {raw!r} is not a valid address")
        name, address = pairs[0]
        try:
            result.append(Address(display_name=flatten(name), addr_spec=address))
        except (HeaderParseError, ValueError, IndexError):
            raise AddressError(f"{label}: {raw!r} is not a valid address") from None
    return result


def _split_commas(text: str) -> list[str]:
    """Split on commas outside quotes and angle brackets; empty entries are dropped."""
    items: list[str] = []
    current: list[str] = []
    quoted = angle = False
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch in ",;" and not quoted and not angle:
            items.append("".join(current))
            current = []
            continue
        current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def format_address(name: str, address: str) -> str:
    """One address as a user would type it, with a copied display name flattened and quoted when needed."""
    name = flatten(name)
    try:
        return str(Address(display_name=name, addr_spec=address)) if name else address
    except (HeaderParseError, ValueError, IndexError):
        return address
