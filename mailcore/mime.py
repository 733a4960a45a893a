"""Byte-exact MIME structure of a stored message, computed once at delivery.

`parse_message(raw)` walks the raw RFC 5322 bytes (CRLF or bare LF line endings) and returns a `ParsedMessage`:
the part tree with byte offsets into `raw` (so IMAP BODY[section], POP3 TOP and webmail attachment downloads
slice the stored bytes and never re-serialise), plus the decoded header summary that lists and search need.

The tree is stored as JSON on each message (`ParsedMessage.structure_json()`), and `MimePart.from_json`
rebuilds it without touching the raw bytes.

Hostile input: nesting deeper than MAX_DEPTH raises `MimeTooDeep`; a header block larger than
MAX_HEADER_BYTES raises `HeaderTooLarge`. Anything else that is merely malformed is parsed best-effort and never
raises.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 100
MAX_HEADER_BYTES = 100 * 1024
SNIPPET_CHARS = 200


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
    then the members, then an end marker with mailbox and host both None.
    """

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


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


@dataclass
class MimePart:
    """One MIME entity. Offsets index the raw message bytes.

    - raw[header_start:body_start] is the header block including the blank line that ends it (IMAP
      BODY[HEADER] / BODY[n.MIME]); header_end is where the blank line starts.
    - raw[body_start:body_end] is the body (IMAP BODY[TEXT] / BODY[n]); for a part inside a multipart, the
      body ends before the line break that precedes the next boundary delimiter (RFC 2046 5.1.1).
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
    lines: int = 0  # body line count (IMAP reports it for text/* and message/rfc822)
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
        raise NotImplementedError

    def part(self, section: str) -> MimePart | None:
        """The part addressed by an IMAP section number such as "1.2" (RFC 3501 6.4.5), or None."""
        raise NotImplementedError

    def walk(self) -> list[MimePart]:
        """This part and all parts below it, depth first."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MimePart:
        raise NotImplementedError


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
        raise NotImplementedError


def parse_message(raw: bytes) -> ParsedMessage:
    raise NotImplementedError
