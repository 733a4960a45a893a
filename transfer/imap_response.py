"""Reading the IMAP responses an import needs (FETCH, LIST) from imaplib's raw data, without I/O.

imaplib hands back a command's untagged data as a list of lines, where a line that announced a literal
(`{n}`) is a tuple (the line, the literal's bytes) and the rest of that response follows as the next item.
`tokens` turns that into one stream of IMAP values (RFC 3501 4: atoms, numbers, quoted strings, literals,
NIL, parenthesised lists), from which `fetches` and `folders` read what they need.
"""

from __future__ import annotations

import datetime
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

Part = bytes | tuple[bytes, bytes] | None


class ResponseError(ValueError):
    """A response that does not parse as the command's answer."""


class Literal(bytes):
    """A literal's bytes: a string, never an atom."""


class Quoted(bytes):
    """A quoted string's content, unescaped."""


_TOKEN = re.compile(
    rb'\s*(?:(?P<open>\()|(?P<close>\))|"(?P<quoted>(?:[^"\\\r\n]|\\.)*)"|\{(?P<literal>\d+)\+?\}\r?\n?|'
    rb"(?P<atom>[^\s()\"{]+))"
)
Value = bytes | list["Value"] | None


def _stream(data: Sequence[Part]) -> tuple[bytes, deque[bytes]]:
    text = bytearray()
    literals: deque[bytes] = deque()
    for part in data:
        if part is None:
            continue
        if isinstance(part, tuple):
            text += part[0]
            literals.append(part[1])
        else:
            text += part
        text += b" "
    return bytes(text), literals


def tokens(data: Sequence[Part]) -> Iterator[Value]:
    """The top-level values of the data, lists nested."""
    text, literals = _stream(data)
    stack: list[list[Value]] = []
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if not match:
            if text[position:].strip():
                raise ResponseError(f"unexpected {text[position : position + 40]!r}")
            break
        position = match.end()
        value: Value
        if match["open"]:
            stack.append([])
            continue
        if match["close"]:
            if not stack:
                raise ResponseError("unbalanced ')'")
            value = stack.pop()
        elif match["quoted"] is not None:
            value = Quoted(re.sub(rb"\\(.)", rb"\1", match["quoted"]))
        elif match["literal"] is not None:
            if not literals:
                raise ResponseError("a literal announced but not received")
            value = Literal(literals.popleft())
            if len(value) != int(match["literal"]):
                raise ResponseError(f"literal of {len(value)} bytes announced as {match['literal'].decode()}")
        else:
            atom = match["atom"]
            value = None if atom.upper() == b"NIL" else atom
        if stack:
            stack[-1].append(value)
        else:
            yield value
    if stack:
        raise ResponseError("unbalanced '('")


@dataclass
class Fetched:
    uid: int
    flags: list[str] = field(default_factory=list)
    internal_date: datetime.datetime | None = None
    size: int | None = None
    body: bytes | None = None


_MONTHS = {
    m: n for n, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_DATE_TIME = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")


def internal_date(value: bytes) -> datetime.datetime:
    """An INTERNALDATE date-time (RFC 3501 9: "dd-Mon-yyyy hh:mm:ss +zzzz")."""
    match = _DATE_TIME.fullmatch(value)
    if not match or match[2].lower().decode() not in _MONTHS:
        raise ResponseError(f"not an IMAP date-time: {value!r}")
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = datetime.timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
    zone = datetime.timezone(-offset if sign == b"-" else offset)
    return datetime.datetime(
        int(year), _MONTHS[month.lower().decode()], int(day), int(hour), int(minute), int(second), tzinfo=zone
    )


def _number(value: Value) -> int:
    if not isinstance(value, bytes) or not value.isdigit():
        raise ResponseError(f"not a number: {value!r}")
    return int(value)


def fetches(data: Sequence[Part]) -> list[Fetched]:
    """The FETCH responses (`n (name value ...)`) that carry a UID."""
    values = list(tokens(data))
    results: list[Fetched] = []
    for number, items in zip(values[::2], values[1::2], strict=False):
        _number(number)
        if not isinstance(items, list) or len(items) % 2:
            raise ResponseError(f"not a FETCH response: {items!r}")
        found: Fetched | None = None
        names = [name.upper() if isinstance(name, bytes) else b"" for name in items[::2]]
        attributes = dict(zip(names, items[1::2], strict=True))
        if b"UID" not in attributes:
            continue  # an unsolicited flag update (RFC 3501 7.4.2) without UID
        found = Fetched(_number(attributes[b"UID"]))
        flags = attributes.get(b"FLAGS")
        if isinstance(flags, list):
            found.flags = [bytes(flag).decode("utf-8", "replace") for flag in flags if isinstance(flag, bytes)]
        date = attributes.get(b"INTERNALDATE")
        if isinstance(date, bytes):
            found.internal_date = internal_date(date)
        if b"RFC822.SIZE" in attributes:
            found.size = _number(attributes[b"RFC822.SIZE"])
        body = attributes.get(b"BODY[]")
        if isinstance(body, bytes):
            found.body = bytes(body)
        results.append(found)
    return results


@dataclass(frozen=True)
class Folder:
    name: bytes  # as the server spells it (modified UTF-7), to SELECT it
    delimiter: str | None
    attributes: frozenset[str]  # lower-cased: "\\noselect", "\\sent", ...


def folders(data: Sequence[Part]) -> list[Folder]:
    """LIST responses: `(attributes) delimiter name`."""
    values = list(tokens(data))
    if len(values) % 3:
        raise ResponseError("LIST responses come in threes")
    found: list[Folder] = []
    for attributes, delimiter, name in zip(values[::3], values[1::3], values[2::3], strict=True):
        if not isinstance(attributes, list) or not isinstance(name, bytes):
            raise ResponseError(f"not a LIST response: {attributes!r} {delimiter!r} {name!r}")
        found.append(
            Folder(
                bytes(name),
                bytes(delimiter).decode("ascii", "replace") if isinstance(delimiter, bytes) else None,
                frozenset(
                    bytes(flag).decode("ascii", "replace").lower() for flag in attributes if isinstance(flag, bytes)
                ),
            )
        )
    return found
