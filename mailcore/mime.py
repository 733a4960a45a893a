"""Byte-exact MIME structure of a stored message, computed once at delivery.

`parse_message(raw)` walks the raw RFC 5322 bytes (CRLF or bare LF line endings) and returns a `ParsedMessage`:
the part tree with byte offsets into `raw` (so IMAP BODY[section], POP3 TOP and webmail attachment downloads
slice the stored bytes and never re-serialise), plus the decoded header summary that lists and search need.

The tree is stored as JSON on each message (`ParsedMessage.structure_json()`), and `MimePart.from_json`
rebuilds it without touching the raw bytes. `decode_body` and `part_text` turn a part back into content.

Hostile input: nesting deeper than MAX_DEPTH raises `MimeTooDeep`; a header block larger than
MAX_HEADER_BYTES raises `HeaderTooLarge`. Anything else that is merely malformed is parsed best-effort and never
raises; past MAX_PARTS parts the rest of a message is not split further.

Structure is found with bytes.find over the raw message (no line-by-line Python loop over bodies), and only header
blocks are examined line by line. Nested multiparts would search the same bytes once per level; past a point they
switch to an index of the message's "--" lines (_DelimiterIndex), so deep nesting does not multiply the cost.
"""

from __future__ import annotations

import binascii
import datetime
import html
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from mailcore.headers import (
    AddressItem,
    b64decode,
    decode_bytes,
    decode_words,
    first_msg_id,
    first_token,
    header_str,
    msg_ids,
    parse_address_list,
    parse_content_type,
    parse_date,
    parse_disposition,
)

MAX_DEPTH = 100
MAX_HEADER_BYTES = 100 * 1024
# Parts per message, as Dovecot's max_total_mime_parts: past it the rest of a multipart is the body of its last
# part. This bounds the work (about 10 us per part) and the stored structure of a message made of tiny parts.
MAX_PARTS = 10_000
SNIPPET_CHARS = 200
TEXT_CHARS = 64 * 1024  # cap on ParsedMessage.text
# Raw body bytes read per part when extracting text: enough for TEXT_CHARS after base64 and HTML markup, and
# it bounds the work spent on a huge text part.
_TEXT_SCAN_BYTES = 8 * TEXT_CHARS


class MimeError(ValueError):
    """The message cannot be accepted for structural reasons."""


class MimeTooDeep(MimeError):
    """Multipart or message/rfc822 nesting deeper than MAX_DEPTH."""


class HeaderTooLarge(MimeError):
    """A header block larger than MAX_HEADER_BYTES."""


@dataclass
class Address:
    """One mailbox of an address header; `name` decoded from encoded-words, `address` as written."""

    name: str
    address: str


@dataclass
class EnvelopeAddress:
    """An address as IMAP ENVELOPE wants it (RFC 3501 7.4.2): raw name, source route, mailbox, host.

    Group syntax is represented as RFC 3501 does: a start marker with host None and mailbox the group name,
    then the members, then an end marker with mailbox and host both None. A mailbox written without "@" has
    host "" (never None, which would make it a group marker).
    """

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


def _addresses_to_json(addresses: list[EnvelopeAddress]) -> list[list[str | None]]:
    # adl is never produced by the parser, so the common form drops it: [name, mailbox, host].
    return [[a.name, a.mailbox, a.host] if a.adl is None else [a.name, a.adl, a.mailbox, a.host] for a in addresses]


def _addresses_from_json(data: list[list[str | None]]) -> list[EnvelopeAddress]:
    return [EnvelopeAddress(a[0], None, a[1], a[2]) if len(a) == 3 else EnvelopeAddress(*a) for a in data]


@dataclass
class Envelope:
    """RFC 3501 ENVELOPE fields; strings are the raw (unfolded, not decoded) header values or None."""

    date: str | None
    subject: str | None
    from_: list[EnvelopeAddress]
    sender: list[EnvelopeAddress]
    reply_to: list[EnvelopeAddress]
    to: list[EnvelopeAddress]
    cc: list[EnvelopeAddress]
    bcc: list[EnvelopeAddress]
    in_reply_to: str | None
    message_id: str | None

    def to_json(self) -> dict[str, Any]:
        """Compact JSON: absent strings and empty lists omitted; sender/reply-to omitted when equal to from."""
        data: dict[str, Any] = {}
        for key, value in (("d", self.date), ("s", self.subject), ("i", self.in_reply_to), ("m", self.message_id)):
            if value is not None:
                data[key] = value
        for key, addresses in (("f", self.from_), ("t", self.to), ("c", self.cc), ("b", self.bcc)):
            if addresses:
                data[key] = _addresses_to_json(addresses)
        # Sender and Reply-To default to From (RFC 3501 7.4.2), so they are usually equal to it; an explicitly
        # different list, even an empty one, is stored.
        for key, addresses in (("se", self.sender), ("r", self.reply_to)):
            if addresses != self.from_:
                data[key] = _addresses_to_json(addresses)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Envelope:
        from_ = _addresses_from_json(data.get("f", []))
        return cls(
            date=data.get("d"),
            subject=data.get("s"),
            from_=from_,
            sender=_addresses_from_json(data["se"]) if "se" in data else list(from_),
            reply_to=_addresses_from_json(data["r"]) if "r" in data else list(from_),
            to=_addresses_from_json(data.get("t", [])),
            cc=_addresses_from_json(data.get("c", [])),
            bcc=_addresses_from_json(data.get("b", [])),
            in_reply_to=data.get("i"),
            message_id=data.get("m"),
        )


# Optional MimePart string fields and their JSON keys.
_OPTIONAL_KEYS = (
    ("content_id", "id"),
    ("description", "ds"),
    ("disposition", "di"),
    ("language", "la"),
    ("location", "lo"),
    ("md5", "m5"),
)


@dataclass
class MimePart:
    """One MIME entity. Offsets index the raw message bytes.

    - raw[header_start:body_start] is the header block including the blank line that ends it (IMAP
      BODY[HEADER] / BODY[n.MIME]); header_end is where the blank line starts. A part without headers, or
      whose header block is not ended by a blank line, has header_end == body_start.
    - raw[body_start:body_end] is the body (IMAP BODY[TEXT] / BODY[n]); for a part inside a multipart, the
      body ends before the line break that precedes the next boundary delimiter (RFC 2046 5.1.1).

    A multipart part has at least one child: a multipart without a boundary parameter, or whose boundary never
    occurs, is invalid (RFC 2046 5.1.1 requires both) and is parsed as text/plain; charset=us-ascii like any
    invalid Content-Type (RFC 2045 5.2). A message/rfc822 part has exactly one child (the encapsulated
    message's root) and an envelope, unless it is base64 or quoted-printable encoded (forbidden by RFC 2046
    5.2.1), in which case it is a leaf with envelope None. Once a message has MAX_PARTS parts, the last one
    runs to the end of its multipart, and a container with no room left for a child is read the same ways.
    So is a multipart met once finding delimiters has cost more than the work budget (see _DelimiterIndex).
    """

    header_start: int
    header_end: int
    body_start: int
    body_end: int
    content_type: str  # lower-case "type/subtype"; "text/plain" when absent (RFC 2045 5.2)
    params: dict[str, str]  # lower-case names, values unquoted and RFC 2231-decoded
    content_id: str | None = None
    description: str | None = None
    encoding: str = "7bit"  # lower-case Content-Transfer-Encoding
    disposition: str | None = None  # lower-case "inline" / "attachment"
    disposition_params: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    location: str | None = None
    md5: str | None = None
    lines: int = 0  # body line count for non-multipart parts (IMAP reports it for text/* and message/rfc822)
    children: list[MimePart] = field(default_factory=list)  # multipart children, or the one message/rfc822
    envelope: Envelope | None = None  # for message/rfc822 parts: the encapsulated message's envelope

    @property
    def size(self) -> int:
        return self.body_end - self.body_start

    @property
    def maintype(self) -> str:
        return self.content_type.partition("/")[0]

    @property
    def subtype(self) -> str:
        return self.content_type.partition("/")[2]

    @property
    def filename(self) -> str | None:
        """Decoded file name from Content-Disposition filename, else Content-Type name (RFC 2231/2047)."""
        name = self.disposition_params.get("filename") or self.params.get("name")
        if not name:
            return None
        # RFC 2047 5 forbids encoded words in parameters, but most mailers write filenames that way.
        return decode_words(name).strip() or None

    def part(self, section: str) -> MimePart | None:
        """The part addressed by an IMAP section number such as "1.2" (RFC 3501 6.4.5), or None.

        The numbers address parts of the message whose root is `self`: "1" of a non-multipart message is its
        body (self); after a message/rfc822 part, numbering continues inside the encapsulated message.
        """
        numbers = section.split(".")
        if not all(n.isdigit() for n in numbers):
            return None
        node = self
        is_message = True  # node is a message root whose non-multipart body answers to "1"
        for i, text in enumerate(numbers):
            number = int(text)
            if node.maintype == "multipart":
                if not 1 <= number <= len(node.children):
                    return None
                node = node.children[number - 1]
            elif not (is_message and number == 1):
                return None
            is_message = False
            if i < len(numbers) - 1 and node.content_type == "message/rfc822" and node.children:
                node = node.children[0]
                is_message = True
        return node

    def walk(self) -> list[MimePart]:
        """This part and all parts below it, depth first."""
        parts: list[MimePart] = []
        stack = [self]
        while stack:
            node = stack.pop()
            parts.append(node)
            stack.extend(reversed(node.children))
        return parts

    def to_json(self) -> dict[str, Any]:
        """Compact JSON; None, empty and default ("7bit", 0 lines) fields are omitted."""
        data: dict[str, Any] = {
            "o": [self.header_start, self.header_end, self.body_start, self.body_end],
            "t": self.content_type,
        }
        if self.params:
            data["p"] = self.params
        for attr, key in _OPTIONAL_KEYS:
            value = getattr(self, attr)
            if value is not None:
                data[key] = value
        if self.encoding != "7bit":
            data["e"] = self.encoding
        if self.disposition_params:
            data["dp"] = self.disposition_params
        if self.lines:
            data["n"] = self.lines
        if self.children:
            # A loop, not a comprehension: comprehensions cost a second stack frame per level before 3.12.
            children = data["c"] = []
            for child in self.children:
                children.append(child.to_json())
        if self.envelope is not None:
            data["v"] = self.envelope.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MimePart:
        header_start, header_end, body_start, body_end = data["o"]
        part = cls(
            header_start,
            header_end,
            body_start,
            body_end,
            data["t"],
            dict(data.get("p", {})),
            encoding=data.get("e", "7bit"),
            disposition_params=dict(data.get("dp", {})),
            lines=data.get("n", 0),
            envelope=Envelope.from_json(data["v"]) if "v" in data else None,
        )
        for attr, key in _OPTIONAL_KEYS:
            if key in data:
                setattr(part, attr, data[key])
        for child in data.get("c", []):
            part.children.append(cls.from_json(child))
        return part


@dataclass
class ParsedMessage:
    root: MimePart
    envelope: Envelope
    subject: str  # decoded, unfolded; "" when absent
    from_: list[Address]
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    date: datetime.datetime | None  # aware; None when absent or unparseable
    message_id: str  # "<...>" as written, "" when absent
    in_reply_to: str  # first msg-id of In-Reply-To, "" when absent
    references: list[str]  # msg-ids of References (then In-Reply-To when References is absent)
    has_attachments: bool
    snippet: str  # first SNIPPET_CHARS characters of the readable text, whitespace collapsed
    text: str  # decoded readable text for search (text/plain parts, else text/html stripped), capped

    def structure_json(self) -> dict[str, Any]:
        return self.root.to_json()

    def envelope_json(self) -> dict[str, Any]:
        return self.envelope.to_json()


# Header fields the parser reads; others are skipped without unfolding.
_WANTED_FIELDS = frozenset(
    {
        b"content-type",
        b"content-transfer-encoding",
        b"content-disposition",
        b"content-id",
        b"content-description",
        b"content-language",
        b"content-location",
        b"content-md5",
        b"date",
        b"subject",
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"in-reply-to",
        b"message-id",
        b"references",
    }
)
# RFC 5322 2.2: field name is printable ASCII except ":"; whitespace before the colon is obsolete syntax
# (RFC 5322 4.5) and tolerated.
_FIELD_NAME = re.compile(rb"([!-9;-~]+)[ \t]*:")
# After "--boundary": "--" for the close delimiter, optional trailing whitespace, then the line end (RFC 2046
# 5.1.1). Anything else on the line means it is not a delimiter (e.g. a longer boundary sharing the prefix).
_DELIMITER_TAIL = re.compile(rb"(--)?[ \t]*(?:\r?\n|\Z)")
# Transfer encodings under which a message/rfc822 body is not the encapsulated message's bytes.
_OPAQUE_ENCODINGS = frozenset({"base64", "quoted-printable"})
_Fields = dict[bytes, bytes]


def _read_header(raw: bytes, start: int, end: int) -> tuple[_Fields, int, int]:
    """The wanted fields (first occurrence, unfolded, stripped), header_end and body_start of the entity at
    raw[start:end].

    The block ends at the first empty line; a line that is neither a field nor a continuation ends it too
    and starts the body (a part that has no header block at all begins right away with its body).
    """
    fields: dict[bytes, list[bytes]] = {}
    current: list[bytes] | None = None  # value pieces of the wanted field being unfolded
    pos = start
    header_end = body_start = end
    while pos < end:
        newline = raw.find(b"\n", pos, end)
        if newline < 0:
            line_end = next_line = end
        else:
            next_line = newline + 1
            line_end = newline - 1 if newline > pos and raw[newline - 1] == 13 else newline
        if line_end == pos:
            header_end, body_start = pos, next_line
            break
        if raw[pos] in b" \t":
            if pos == start:
                header_end = body_start = pos
                break
            # RFC 5322 2.2.3: unfolding removes the line break only; the leading whitespace stays.
            if current is not None:
                current.append(raw[pos:line_end])
        else:
            m = _FIELD_NAME.match(raw, pos, line_end)
            if m is None:
                header_end = body_start = pos
                break
            name = m[1].lower()
            if name in _WANTED_FIELDS and name not in fields:
                current = fields[name] = [raw[m.end() : line_end]]
            else:
                current = None
        if next_line - start > MAX_HEADER_BYTES:
            raise HeaderTooLarge(f"header block at offset {start} exceeds {MAX_HEADER_BYTES} bytes")
        pos = next_line
    return {name: b"".join(pieces).strip() for name, pieces in fields.items()}, header_end, body_start


def _delimiters(
    raw: bytes, start: int, end: int, boundary: bytes, limit: int, lines: list[int] | None = None
) -> tuple[list[tuple[int, int, bool]], int]:
    """(line start, line end after the line break, is close delimiter) of each boundary delimiter line in
    raw[start:end], up to and including the close delimiter, at most `limit` of them; and the work spent.

    Candidate lines are found with bytes.find, or taken from `lines` (sorted starts of every line that can be
    one, see _DelimiterIndex) when given. The work is the bytes searched plus _LINE_COST per candidate line."""
    dash = b"--" + boundary
    needle = b"\n" + dash
    found: list[tuple[int, int, bool]] = []
    examined = 0
    searched_to = end
    if lines is not None:
        # The delimiter must lie within raw[start:end], as bytes.find requires of it.
        following = bisect_left(lines, start)
        candidate = lines[following] if following < len(lines) and lines[following] + len(dash) <= end else -1
    elif raw.startswith(dash, start, end):
        candidate = start
    else:
        candidate = raw.find(needle, start, end)
        candidate = candidate + 1 if candidate >= 0 else -1
    while candidate >= 0:
        examined += 1
        # Lines from the index are only known to be under the boundary's key (see _index_keys).
        m = _DELIMITER_TAIL.match(raw, candidate + len(dash), end) if raw.startswith(dash, candidate) else None
        if m is not None:
            close = m[1] is not None
            found.append((candidate, m.end(), close))
            if close or len(found) == limit:
                searched_to = m.end()
                break
            # The delimiter line's own line break may precede the next delimiter directly (an empty part).
            search_from = m.end() - 1
        else:
            search_from = candidate
        if lines is not None:
            following += 1
            candidate = lines[following] if following < len(lines) and lines[following] + len(dash) <= end else -1
        else:
            candidate = raw.find(needle, search_from, end)
            candidate = candidate + 1 if candidate >= 0 else -1
    searched = 0 if lines is not None else searched_to - start
    return found, searched + _LINE_COST * examined


# Work of handling one candidate line in Python, in bytes that bytes.find searches in the same time (~0.4 us
# against ~0.4 ns per byte).
_LINE_COST = 1000
# Work allowed per byte of the message (and in all, at least), searching or indexing delimiter lines. Past it,
# a multipart not yet split is read as a leaf, like one whose boundary never occurs: a 25 MiB message of "--"
# lines under 99 nested boundaries otherwise took 2.5 s, holding the interpreter all that time.
_WORK_PER_BYTE = 8
_WORK_MINIMUM = 1 << 24


class _DelimiterIndex:
    """Boundary delimiter lines of one message, for all its multiparts.

    Each multipart searches its whole body for its own boundary, so nested multiparts search the same bytes once
    per level: 100 levels around a 25 MiB body cost 100 searches of 25 MiB. Once the searches overlap and the work
    spent on them reaches what indexing would cost (_LINE_COST per line of the message that starts with "--"),
    every such line is indexed once by the boundaries it can delimit, and each multipart then only visits its own
    candidates. As in ski rental, the total is at most about twice the cheaper of searching and indexing, and
    ordinary messages, whose multiparts do not overlap, never build the index. Neither is done beyond the work
    budget (_WORK_PER_BYTE): then no delimiters are found.
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.budget = max(_WORK_MINIMUM, _WORK_PER_BYTE * len(raw))
        self.spent = 0
        self.index_cost: int | None = None  # counted once the searches overlap
        self.lines: dict[bytes, list[int]] | None = None

    def find(self, start: int, end: int, boundary: bytes, limit: int) -> list[tuple[int, int, bool]]:
        cost = self.index_cost
        if self.lines is None and cost is not None and cost <= self.spent <= self.budget - cost:
            self.lines = self._index()
        if self.lines is None:
            if self.spent >= self.budget:
                return []
            found, work = _delimiters(self.raw, start, end, boundary, limit)
            self.spent += work
            # Work past twice the message size means the searches overlap (multiparts nested in one another).
            if self.index_cost is None and self.spent >= 2 * len(self.raw):
                self.index_cost = _LINE_COST * (self.raw.count(b"\n--") + 1)
            return found
        keys = _index_keys(boundary)
        lines = self.lines.get(keys[0], [])
        if len(keys) > 1:
            lines = sorted(lines + self.lines.get(keys[1], []))
        return _delimiters(self.raw, start, end, boundary, limit, lines)[0]

    def _index(self) -> dict[bytes, list[int]]:
        """Start of each line that begins with "--", under the rest of the line without trailing whitespace and
        CR, and also under that without a final "--" (a close delimiter): a superset of the delimiter lines of
        each boundary, found under the keys of _index_keys. Multipart ranges end at line ends, so a line is
        never cut short by the end of a range."""
        raw = self.raw
        index: dict[bytes, list[int]] = {}
        newline = raw.find(b"\n--")
        line = 0 if raw.startswith(b"--") else newline + 1 if newline >= 0 else -1
        while line >= 0:
            line_end = raw.find(b"\n", line)
            key = raw[line + 2 : line_end if line_end >= 0 else len(raw)].rstrip(b" \t\r")
            index.setdefault(key, []).append(line)
            if key.endswith(b"--"):
                index.setdefault(key[:-2], []).append(line)
            if line_end < 0:
                break
            newline = raw.find(b"\n--", line_end)
            line = newline + 1 if newline >= 0 else -1
        return index


def _index_keys(boundary: bytes) -> tuple[bytes, ...]:
    """The _DelimiterIndex keys under which every delimiter line of `boundary` is found.

    A delimiter line is "--" boundary, then "--" for the close delimiter, then whitespace (RFC 2046 5.1.1).
    Its key is boundary itself (or boundary "--" and so boundary), unless boundary ends with whitespace, which
    the open delimiter's key has lost; a boundary spanning lines is found under its first line.
    """
    first_line, newline, _ = boundary.partition(b"\n")
    stripped = first_line.rstrip(b" \t\r")
    if newline or stripped == boundary:
        return (stripped,)
    return (stripped, boundary)


def _line_count(raw: bytes, start: int, end: int) -> int:
    count = raw.count(b"\n", start, end)
    if end > start and raw[end - 1] != 10:
        count += 1  # last line without a line break (always so for a part inside a multipart)
    return count


class _Parser:
    """One parse of `raw`, counting the parts created so far against MAX_PARTS."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.parts = 0
        self.delimiters = _DelimiterIndex(raw)

    def entity(self, start: int, end: int, nesting: int, in_digest: bool) -> tuple[MimePart, _Fields]:
        """The entity at raw[start:end] and its header fields; `nesting` counts the containers around it."""
        raw = self.raw
        fields, header_end, body_start = _read_header(raw, start, end)
        content_type = fields.get(b"content-type")
        if content_type is None and in_digest:
            ctype, params = "message/rfc822", dict[str, str]()  # RFC 2046 5.1.5
        else:
            ctype, params = parse_content_type(None if content_type is None else header_str(content_type))
        part = MimePart(start, header_end, body_start, end, ctype, params)
        self.parts += 1
        if (value := fields.get(b"content-transfer-encoding")) is not None:
            part.encoding = first_token(header_str(value)) or "7bit"
        if (value := fields.get(b"content-disposition")) is not None:
            part.disposition, part.disposition_params = parse_disposition(header_str(value))
        if (value := fields.get(b"content-id")) is not None:
            part.content_id = header_str(value)
        if (value := fields.get(b"content-description")) is not None:
            part.description = header_str(value)
        if (value := fields.get(b"content-language")) is not None:
            part.language = header_str(value)
        if (value := fields.get(b"content-location")) is not None:
            part.location = header_str(value)
        if (value := fields.get(b"content-md5")) is not None:
            part.md5 = header_str(value)

        is_multipart = part.maintype == "multipart"
        is_message = ctype == "message/rfc822" and part.encoding not in _OPAQUE_ENCODINGS
        if (is_multipart or is_message) and nesting >= MAX_DEPTH:
            raise MimeTooDeep(f"MIME nesting deeper than {MAX_DEPTH} levels")
        if self.parts >= MAX_PARTS:
            # No room for a child: containers are read as leaves, like an invalid multipart or an encoded
            # message/rfc822 (see MimePart).
            is_message = False
            boundary = ""
        else:
            boundary = params.get("boundary", "")

        if is_multipart:
            # One delimiter per part that still fits, and one more to tell whether the last of them is final.
            room = MAX_PARTS - self.parts
            delimiters = self.delimiters.find(body_start, end, boundary.encode("utf-8"), room + 1) if boundary else []
            if not delimiters or delimiters[0][2]:
                part.content_type, part.params = "text/plain", {"charset": "us-ascii"}
                is_multipart = False
            else:
                digest = ctype == "multipart/digest"
                for i, (_, child_start, close) in enumerate(delimiters):
                    if close:
                        break
                    full = self.parts + 1 >= MAX_PARTS
                    last = i + 1 == len(delimiters) or (full and not delimiters[i + 1][2])
                    if last:
                        # No close delimiter, or no room for the parts still to come: this one runs to the end.
                        child_end = end
                    else:
                        # The line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
                        child_end = delimiters[i + 1][0]
                        if child_end > child_start and raw[child_end - 1] == 10:
                            child_end -= 1
                            if child_end > child_start and raw[child_end - 1] == 13:
                                child_end -= 1
                    child, _ = self.entity(child_start, child_end, nesting + 1, digest)
                    part.children.append(child)
                    if last or full:
                        break
        elif is_message:
            child, child_fields = self.entity(body_start, end, nesting + 1, False)
            part.children.append(child)
            part.envelope = _envelope(child_fields, {})
        if not is_multipart:
            part.lines = _line_count(raw, body_start, end)
        return part, fields


_ADDRESS_FIELDS = (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc")


def _envelope(fields: _Fields, parsed: dict[bytes, list[AddressItem]]) -> Envelope:
    """The ENVELOPE of a header block; address lists parsed here are left in `parsed` for reuse."""
    for name in _ADDRESS_FIELDS:
        value = fields.get(name)
        parsed[name] = parse_address_list(header_str(value)) if value else []
    lists: dict[bytes, list[EnvelopeAddress]] = {}
    for name, items in parsed.items():
        addresses = []
        for kind, display, local, domain in items:
            if kind == "mailbox":
                addresses.append(EnvelopeAddress(display or None, None, local, "" if domain is None else domain))
            elif kind == "group":
                addresses.append(EnvelopeAddress(None, None, display, None))
            else:
                addresses.append(EnvelopeAddress(None, None, None, None))
        lists[name] = addresses

    def raw_value(name: bytes) -> str | None:
        value = fields.get(name)
        return None if value is None else header_str(value)

    from_ = lists[b"from"]
    return Envelope(
        date=raw_value(b"date"),
        subject=raw_value(b"subject"),
        from_=from_,
        # RFC 3501 7.4.2: the server fills in Sender and Reply-To from From when they are absent.
        sender=lists[b"sender"] or list(from_),
        reply_to=lists[b"reply-to"] or list(from_),
        to=lists[b"to"],
        cc=lists[b"cc"],
        bcc=lists[b"bcc"],
        in_reply_to=raw_value(b"in-reply-to"),
        message_id=raw_value(b"message-id"),
    )


def _summary_addresses(items: list[AddressItem]) -> list[Address]:
    """Decoded mailboxes of an address list; group markers are dropped, members kept."""
    return [
        Address(decode_words(display), local if domain is None else f"{local}@{domain}")
        for kind, display, local, domain in items
        if kind == "mailbox"
    ]


def _transfer_decode(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return b64decode(data)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data  # 7bit, 8bit, binary and unknown encodings are passed through


def decode_body(raw: bytes, part: MimePart) -> bytes:
    """The body of `part` with its Content-Transfer-Encoding (base64, quoted-printable) undone."""
    return _transfer_decode(raw[part.body_start : part.body_end], part.encoding)


def part_text(raw: bytes, part: MimePart) -> str:
    """The decoded body of `part` as text in its charset (unknown or broken charsets decoded best-effort)."""
    return decode_bytes(decode_body(raw, part), part.params.get("charset"))


# Elements whose content is not readable text, and comments; each opener is paired with its closer below.
_HTML_SKIPPED = re.compile(r"<(script|style|head|title)\b[^<>]*>?|<!--", re.I)
_HTML_CLOSERS = {name: re.compile(rf"</{name}\s*>", re.I) for name in ("script", "style", "head", "title")} | {
    "": re.compile("-->")
}
_HTML_BLOCK_TAG = re.compile(r"</?(?:br|p|div|tr|li|h[1-6]|table|blockquote|pre|hr)\b[^<>]*>", re.I)
# "[^<>]" rather than "[^>]" keeps a run of unclosed "<a" linear instead of rescanning to the end each time.
_HTML_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>")
# A run of horizontal whitespace that is not already one space: most runs in text are, and replacing each of them by
# itself took most of the time of a long HTML body.
_HORIZONTAL_SPACE = re.compile(r"[\t\f\v\xa0][ \t\f\v\xa0]*| [ \t\f\v\xa0]+")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: scripts, styles, head and comments dropped, tags removed (block tags
    become line breaks), entities unescaped, whitespace runs collapsed."""
    pieces: list[str] = []
    pos = 0
    while (m := _HTML_SKIPPED.search(markup, pos)) is not None:
        pieces.append(markup[pos : m.start()])
        closer = _HTML_CLOSERS[(m[1] or "").lower()].search(markup, m.end())
        # An unclosed element only loses its opening tag, so a missing </head> does not swallow the body.
        pos = closer.end() if closer is not None else m.end()
    pieces.append(markup[pos:])
    text = _HTML_TAG.sub("", _HTML_BLOCK_TAG.sub("\n", "".join(pieces)))
    text = html.unescape(text)
    # Five looks at C speed spare the regular expression's pass over a text with nothing to collapse.
    if "  " in text or any(space in text for space in "\t\f\v\xa0"):
        text = _HORIZONTAL_SPACE.sub(" ", text)
    # Whitespace around a line break, and blank lines, go: the lines stripped, the empty ones dropped. (A regular
    # expression for it, r"\s*\n\s*", tried a match at every space.)
    return "\n".join(line for line in (piece.strip() for piece in text.split("\n")) if line)


def _has_text(raw: bytes, part: MimePart, content_type: str) -> bool:
    """Whether a non-attachment `content_type` leaf below `part` has a body that is not just whitespace."""
    return any(
        p.content_type == content_type
        and p.disposition != "attachment"
        and raw[p.body_start : min(p.body_end, p.body_start + 1024)].strip()
        for p in part.walk()
    )


def _readable_parts(raw: bytes, part: MimePart, out: list[MimePart]) -> None:
    """Append the text/plain and text/html leaves that make up the readable text of `part`."""
    if part.disposition == "attachment":
        return
    if part.content_type in ("text/plain", "text/html"):
        out.append(part)
    elif part.content_type == "multipart/alternative":
        # Plain text is preferred (it needs no stripping) unless it is empty, as some mailers send it; otherwise
        # the last HTML alternative, as RFC 2046 5.1.4 orders alternatives by increasing faithfulness.
        chosen = next((c for c in part.children if _has_text(raw, c, "text/plain")), None)
        if chosen is None:
            chosen = next((c for c in reversed(part.children) if _has_text(raw, c, "text/html")), None)
        if chosen is not None:
            _readable_parts(raw, chosen, out)
    elif part.maintype == "multipart" or part.content_type == "message/rfc822":
        for child in part.children:
            _readable_parts(raw, child, out)


def _readable_text(raw: bytes, root: MimePart) -> str:
    parts: list[MimePart] = []
    _readable_parts(raw, root, parts)
    pieces: list[str] = []
    length = 0
    for part in parts:
        data = _transfer_decode(
            raw[part.body_start : min(part.body_end, part.body_start + _TEXT_SCAN_BYTES)], part.encoding
        )
        text = decode_bytes(data, part.params.get("charset"))
        text = html_to_text(text) if part.subtype == "html" else text.replace("\r\n", "\n").strip()
        if text:
            pieces.append(text)
            length += len(text) + 1
            if length >= TEXT_CHARS:
                break
    return "\n".join(pieces)[:TEXT_CHARS]


def _snippet(text: str) -> str:
    # Collapsing a prefix is enough unless the text is mostly whitespace.
    snippet = " ".join(text[: SNIPPET_CHARS * 4].split())
    if len(snippet) < SNIPPET_CHARS and len(text) > SNIPPET_CHARS * 4:
        snippet = " ".join(text.split())
    return snippet[:SNIPPET_CHARS].rstrip()


def _is_attachment(part: MimePart) -> bool:
    """Whether `part` counts for has_attachments: it is marked attachment, or it is a non-text, non-multipart
    part with a file name, except an image with a Content-ID not marked attachment (an inline image referenced
    by cid: from the HTML). A forwarded message/rfc822 counts only when it is marked or named like that."""
    if part.disposition == "attachment":
        return True
    if part.maintype in ("text", "multipart") or part.filename is None:
        return False
    return not (part.maintype == "image" and part.content_id)


def attachment_names(root: MimePart) -> str:
    """The file names and types of the attachments under `root`, for search: "report.pdf application/pdf"."""
    names: list[str] = []
    for part in root.walk():
        if _is_attachment(part):
            names.extend(filter(None, (part.filename, part.content_type)))
    return " ".join(names)


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a whole message; raises MimeTooDeep or HeaderTooLarge for hostile input, nothing else."""
    root, fields = _Parser(raw).entity(0, len(raw), 0, False)
    addresses: dict[bytes, list[AddressItem]] = {}
    envelope = _envelope(fields, addresses)
    subject = fields.get(b"subject")
    date = fields.get(b"date")
    in_reply_to = first_msg_id(header_str(fields[b"in-reply-to"])) if b"in-reply-to" in fields else ""
    references = msg_ids(header_str(fields[b"references"])) if b"references" in fields else []
    if not references and in_reply_to:
        references = [in_reply_to]
    text = _readable_text(raw, root)
    return ParsedMessage(
        root=root,
        envelope=envelope,
        subject="" if subject is None else decode_words(header_str(subject)),
        from_=_summary_addresses(addresses[b"from"]),
        to=_summary_addresses(addresses[b"to"]),
        cc=_summary_addresses(addresses[b"cc"]),
        bcc=_summary_addresses(addresses[b"bcc"]),
        reply_to=_summary_addresses(addresses[b"reply-to"]),
        date=None if date is None else parse_date(header_str(date)),
        message_id=first_msg_id(header_str(fields[b"message-id"])) if b"message-id" in fields else "",
        in_reply_to=in_reply_to,
        references=references,
        has_attachments=any(_is_attachment(part) for part in root.walk()),
        snippet=_snippet(text),
        text=text,
    )
