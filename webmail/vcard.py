"""vCard (RFC 6350, and the 3.0 of RFC 2426 most address books export) for the address book: names and
addresses in, names and addresses out. No I/O, no Django."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CARDS = 10_000


@dataclass(frozen=True)
class Card:
    name: str
    addresses: tuple[str, ...]


def _unfold(text: str) -> list[str]:
    """Content lines: a line break followed by a space or tab continues the line (RFC 6350 3.2)."""
    return re.sub(r"\r?\n[ \t]", "", text).splitlines()


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] in "nN" else m[1], value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def parse(text: str) -> list[Card]:
    """Every card with at least one EMAIL; FN is the name (else N's given and family names)."""
    cards: list[Card] = []
    addresses: list[str] = []
    name, structured, inside = "", "", False
    for line in _unfold(text):
        head, colon, value = line.partition(":")
        if not colon:
            continue
        prop = head.split(";", 1)[0].split(".")[-1].upper()  # "item1.EMAIL;TYPE=work" is EMAIL
        if prop == "BEGIN" and value.strip().upper() == "VCARD":
            name, structured, addresses, inside = "", "", [], True
        elif prop == "END" and value.strip().upper() == "VCARD" and inside:
            if addresses:
                cards.append(Card(name or structured, tuple(dict.fromkeys(addresses))))
            inside = False
            if len(cards) >= MAX_CARDS:
                break
        elif inside and prop == "FN":
            name = " ".join(_unescape(value).split())
        elif inside and prop == "N":
            family, _, rest = value.partition(";")
            given = rest.split(";", 1)[0]
            structured = " ".join(_unescape(f"{given} {family}").split())
        elif inside and prop == "EMAIL":
            address = _unescape(value).strip().removeprefix("mailto:")
            if "@" in address:
                addresses.append(address)
    return cards


def serialize(cards: list[Card]) -> str:
    """vCard 4.0, CRLF line ends (RFC 6350 3.1)."""
    lines: list[str] = []
    for card in cards:
        lines += ["BEGIN:VCARD", "VERSION:4.0", f"FN:{_escape(card.name or card.addresses[0])}"]
        lines += [f"EMAIL:{_escape(address)}" for address in card.addresses]
        lines.append("END:VCARD")
    return "".join(f"{line}\r\n" for line in lines)
