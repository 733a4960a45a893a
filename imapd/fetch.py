"""FETCH items (RFC 3501 6.4.5): parsing the item list and rendering one message's response.

Every BODY[section] is a slice of the stored raw bytes, located with the MIME offsets stored at delivery;
nothing is re-serialised. ENVELOPE, BODYSTRUCTURE and BODY are copied from their wire forms stored at delivery.
"""

from __future__ import annotations

import binascii
import functools
import re
from dataclasses import dataclass, field

from imapd.protocol import Atom, ParseError, Token
from mailcore.imap_wire import literal
from mailcore.mime import MimePart

_MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"],
}
_SIMPLE = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "UID", "MODSEQ"}
_RFC822 = {"RFC822": ("", False), "RFC822.HEADER": ("HEADER", True), "RFC822.TEXT": ("TEXT", False)}
_SECTION_ITEM = re.compile(r"(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?\Z", re.IGNORECASE)
_PART = re.compile(r"\d+(?:\.\d+)*")
_BINARY_ITEM = re.compile(r"(BINARY(?:\.PEEK|\.SIZE)?)\[([\d.]*)\](?:<(\d+)\.(\d+)>)?\Z", re.IGNORECASE)
_FIELD_NAME = re.compile(r"[!-9;-~]+")


@dataclass(frozen=True)
class Section:
    part: str  # "1.2" or "" for the whole message
    text: str  # "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME"
    fields: tuple[str, ...] = ()

    def label(self) -> str:
        """The section as echoed in the response: keywords upper-cased, field names as the client sent them."""
        spec = ".".join(p for p in (self.part, self.text) if p)
        if self.fields:
            spec += " (" + " ".join(self.fields) + ")"
        return spec


@dataclass(frozen=True)
class Item:
    name: str  # FLAGS, ..., RFC822.HEADER, or BODY for a section
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = True  # False when fetching it sets \Seen

    @functools.cached_property
    def label(self) -> bytes:
        """How a section item names itself in the response, before a partial's origin: worked out once per
        request, not for every message."""
        assert self.section is not None
        return self.name.encode() if self.name.startswith("RFC822") else b"BODY[%s]" % self.section.label().encode()


@dataclass
class Request:
    items: list[Item] = field(default_factory=list)
    # 8-bit header data in 7-bit form (ENVELOPE, HEADER sections): the client did not enable UTF8=ACCEPT or
    # IMAP4rev2 (RFC 6855 3, 5; mailcore.downgrade).
    downgrade: bool = False

    @functools.cached_property
    def names(self) -> frozenset[str]:
        return frozenset(item.name for item in self.items)

    @property
    def needs_raw(self) -> bool:
        return any(i.section is not None for i in self.items)

    @property
    def header_only(self) -> bool:
        """Every section is the message's header or fields of it: only the stored header bytes are read."""
        sections = [i.section for i in self.items if i.section is not None]
        return (
            not self.needs_binary
            and bool(sections)
            and all(s.part == "" and s.text in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT") for s in sections)
        )

    @property
    def needs_structure(self) -> bool:
        """The MIME tree, whose offsets locate BODY[section]: not for the message's own header, whose bytes are
        read alone (`header_only`)."""
        return self.needs_raw and not self.header_only

    @property
    def needs_bodystructure(self) -> bool:
        return any(i.name == "BODYSTRUCTURE" for i in self.items)

    @property
    def needs_body(self) -> bool:
        return any(i.name == "BODY" and i.section is None for i in self.items)

    @property
    def needs_envelope(self) -> bool:
        return any(i.name == "ENVELOPE" for i in self.items)

    @property
    def needs_binary(self) -> bool:
        return any(i.name in ("BINARY", "BINARY.SIZE") for i in self.items)

    @property
    def needs_flags(self) -> bool:
        return any(i.name == "FLAGS" for i in self.items)

    @property
    def sets_seen(self) -> bool:
        return any(not i.peek for i in self.items)


def parse_section(spec: str) -> Section:
    fields: tuple[str, ...] = ()
    head, _, rest = spec.partition(" ")
    if rest:
        rest = rest.strip()
        if not (rest.startswith("(") and rest.endswith(")")):
            raise ParseError(f"Invalid section [{spec}]")
        names = rest[1:-1].split()
        if not names or not all(_FIELD_NAME.fullmatch(n.strip('"')) for n in names):
            raise ParseError(f"Invalid header field list in [{spec}]")
        fields = tuple(n.strip('"') for n in names)
    part = ""
    text = head.upper()
    match = _PART.match(head)
    if match:
        part = match[0]
        text = head[match.end() :].upper()
        if text.startswith("."):
            text = text[1:]
        elif text:
            raise ParseError(f"Invalid section [{spec}]")
        if "0" in part.split(".") or any(n.startswith("0") for n in part.split(".")):
            raise ParseError(f"Invalid part number in [{spec}]")
    allowed = {"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"} | ({"MIME"} if part else set())
    if text not in allowed:
        raise ParseError(f"Invalid section [{spec}]")
    if (text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT")) != bool(fields):
        raise ParseError(f"Invalid section [{spec}]")
    return Section(part, text, fields)


def _item(token: Token) -> list[Item]:
    if not isinstance(token, Atom):
        raise ParseError("Invalid FETCH item")
    name = token.upper()
    if name in _SIMPLE:
        return [Item(name)]
    if name in _RFC822:
        text, peek = _RFC822[name]
        return [Item(name, Section("", text), peek=peek)]
    binary = _BINARY_ITEM.match(token)
    if binary is not None:
        # RFC 3516 4.1: BINARY[part]<partial> and BINARY.PEEK, decoded from the part's transfer encoding;
        # BINARY.SIZE[part], the decoded size.
        kind = binary[1].upper()
        part = binary[2]
        if part and (not _PART.fullmatch(part) or any(n.startswith("0") for n in part.split("."))):
            raise ParseError(f"Invalid part number in {token}")
        partial = None
        if binary[3] is not None:
            if kind == "BINARY.SIZE":
                raise ParseError("BINARY.SIZE takes no partial range")
            partial = (int(binary[3]), int(binary[4]))
            if partial[1] == 0:
                raise ParseError("A partial fetch needs a length above zero")
        name = "BINARY.SIZE" if kind == "BINARY.SIZE" else "BINARY"
        return [Item(name, Section(part, ""), partial, peek=kind != "BINARY")]
    match = _SECTION_ITEM.match(token)
    if match is None:
        raise ParseError(f"Unknown FETCH item {token}")
    partial = None
    if match[3] is not None:
        partial = (int(match[3]), int(match[4]))
        if partial[1] == 0:
            raise ParseError("A partial fetch needs a length above zero")
    return [Item("BODY", parse_section(match[2]), partial, peek=match[1].upper() == "BODY.PEEK")]


def parse(tokens: list[Token]) -> Request:
    """The FETCH argument after the sequence set: a macro, one item or a list of items."""
    if len(tokens) != 1:
        raise ParseError("FETCH needs a sequence set and one item or a list of items")
    arg = tokens[0]
    if isinstance(arg, Atom) and arg.upper() in _MACROS:
        return Request([Item(name) for name in _MACROS[arg.upper()]])
    if isinstance(arg, list):
        if not arg:
            raise ParseError("Empty FETCH item list")
        return Request([item for token in arg for item in _item(token)])
    return Request(_item(arg))


@dataclass(frozen=True)
class Modifiers:
    """FETCH modifiers (RFC 7162 3.1.4.1, 3.2.6): CHANGEDSINCE n [VANISHED]."""

    changed_since: int | None = None
    vanished: bool = False


def parse_modifiers(token: Token | None) -> Modifiers:
    if token is None:
        return Modifiers()
    if not isinstance(token, list) or not token:
        raise ParseError("FETCH modifiers must be a list")
    changed_since = None
    vanished = False
    pos = 0
    while pos < len(token):
        name = str(token[pos]).upper() if isinstance(token[pos], Atom) else ""
        if name == "CHANGEDSINCE" and pos + 1 < len(token):
            changed_since = mod_sequence(token[pos + 1])
            pos += 2
        elif name == "VANISHED":
            vanished = True
            pos += 1
        else:
            raise ParseError("Unknown FETCH modifier")
    if vanished and changed_since is None:
        raise ParseError("VANISHED needs CHANGEDSINCE")  # RFC 7162 3.2.6
    return Modifiers(changed_since, vanished)


def mod_sequence(token: Token) -> int:
    """RFC 7162 7: mod-sequence-value (or -valzer), 1..2^63-1."""
    if not isinstance(token, Atom) or not token.isdigit() or len(token) > 19 or int(token) >= 2**63:
        raise ParseError("Invalid mod-sequence")
    return int(token)


# --- rendering -----------------------------------------------------------------------------------------------


def internal_date(moment: str) -> bytes:
    """INTERNALDATE's date-time (RFC 3501 9) of a moment written "DD-Mon-YYYY HH:MM:SS" in UTC."""
    return b'"%s +0000"' % moment.encode("ascii")


def _header_lines(block: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case field name, the field's full text with continuation lines and line breaks)."""
    out: list[tuple[bytes, bytes]] = []
    for line in block.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + line)
        elif line.strip():
            out.append((line.split(b":", 1)[0].strip().lower(), line))
    return out


def section_bytes(raw: bytes, root: MimePart, section: Section) -> bytes | None:
    """The bytes a section names, or None when the message has no such part."""
    node: MimePart | None = root
    if section.part:
        node = root.part(section.part)
        if node is None:
            return None
        if section.text == "MIME":
            return raw[node.header_start : node.body_start]
        if not section.text:
            return raw[node.body_start : node.body_end]
        # HEADER and TEXT of a part address the message inside a message/rfc822 part (RFC 3501 6.4.5).
        if node.content_type != "message/rfc822" or not node.children:
            return None
        node = node.children[0]
    assert node is not None
    if not section.text:
        return raw[node.header_start : node.body_end]
    if section.text == "TEXT":
        return raw[node.body_start : node.body_end]
    return header_section(raw[node.header_start : node.body_start], section)


@functools.lru_cache(maxsize=256)  # bounded: the lists come from clients
def _field_names(fields: tuple[str, ...]) -> frozenset[bytes]:
    """A section's field names as `_header_lines` gives them: worked out once, not for every message fetched."""
    return frozenset(f.lower().encode("ascii") for f in fields)


# A header block as nearly all mail has it: every line ends in CRLF or LF (no lone CR), each field starts with a
# visible character, and the only empty line is the last. There a field is its first line and the lines after it
# that start with a space or tab, as `_header_lines` takes it.
_REGULAR_BLOCK = re.compile(rb"(?:[^ \t\r\n\x0b\x0c][^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)*\r?\n")


def _regular_fields(block: bytes) -> bytes | None:
    """The fields of a regular header block, without its last line (the empty one); None for another block."""
    if not _REGULAR_BLOCK.fullmatch(block):
        return None
    return block[: len(block) - (2 if block.endswith(b"\r\n") else 1)]


@functools.lru_cache(maxsize=256)  # bounded: the lists come from clients
def _fields_pattern(fields: tuple[str, ...]) -> re.Pattern[bytes]:
    """The fields of a regular block with one of these names, searched in the block after a LF: the LF that ends
    the line before (a literal start, which the search skips to at C speed), then the name (any case, as
    bytes.lower folds ASCII only), maybe white space, a colon or the end of the line (a line without a colon is
    named by all of it, `_header_lines`), and its continuation lines, up to but without the field's last LF."""
    names = b"|".join(re.escape(name.encode("ascii")) for name in fields)
    return re.compile(
        rb"\n((?:" + names + rb")[ \t\x0b\x0c]*(?::[^\r\n]*)?\r?(?:\n[ \t][^\r\n]*\r?)*)(?=\n)", re.IGNORECASE
    )


def header_section(header: bytes, section: Section) -> bytes:
    """HEADER, HEADER.FIELDS or HEADER.FIELDS.NOT of a header block (with its blank line)."""
    if section.text == "HEADER":
        return header
    keep = section.text == "HEADER.FIELDS"
    fields = _regular_fields(header)
    if fields is not None:
        # One regular expression finds the fields named, at C speed instead of a Python step per line.
        pattern = _fields_pattern(section.fields)
        if keep:
            found = pattern.findall(b"\n" + fields)
            return b"\n".join(found) + b"\n\r\n" if found else b"\r\n"
        # Each field taken out goes with the LF before it and leaves its own: the line before keeps its ending.
        return pattern.sub(b"", b"\n" + fields)[1:] + b"\r\n"
    wanted = _field_names(section.fields)
    picked = [text for name, text in _header_lines(header) if (name in wanted) == keep]
    return b"".join(line if line.endswith(b"\n") else line + b"\r\n" for line in picked) + b"\r\n"


@dataclass
class MessageData:
    """What the store returns for one message; fields not requested stay None."""

    uid: int
    flags: list[str]  # [] unless FLAGS was asked for or \\Seen set
    internal_date: str  # "DD-Mon-YYYY HH:MM:SS", UTC; "" unless INTERNALDATE was asked for
    size: int
    envelope: bytes | None = None  # wire form
    bodystructure: bytes | None = None  # wire form
    body: bytes | None = None  # wire form
    structure: dict | None = None  # MIME tree JSON
    raw: bytes | None = None
    modseq: int = 0
    decoded: dict[str, bytes | None] | None = None  # BINARY: part -> decoded content
    sections: dict[Section, bytes | None] | None = None  # BODY[...], RFC822.*: their bytes


def render(
    seq: int,
    message: MessageData,
    request: Request,
    *,
    include_uid: bool,
    include_flags: bool,
    include_modseq: bool = False,
) -> bytes:
    """One "* n FETCH (...)" response, CRLF-terminated. With CONDSTORE on, MODSEQ goes with FLAGS (RFC 7162
    3.1.4.1)."""
    parts: list[bytes] = []
    names = request.names
    if include_uid and "UID" not in names:
        parts.append(b"UID %d" % message.uid)
    for item in request.items:
        if item.name == "FLAGS":
            parts.append(flags_list(message.flags))
        elif item.name == "UID":
            parts.append(b"UID %d" % message.uid)
        elif item.name == "MODSEQ":
            parts.append(b"MODSEQ (%d)" % message.modseq)
        elif item.name == "INTERNALDATE":
            parts.append(b"INTERNALDATE " + internal_date(message.internal_date))
        elif item.name == "RFC822.SIZE":
            parts.append(b"RFC822.SIZE %d" % message.size)
        elif item.name == "ENVELOPE":
            assert message.envelope is not None
            parts.append(b"ENVELOPE " + message.envelope)
        elif item.name == "BODYSTRUCTURE":
            assert message.bodystructure is not None
            parts.append(b"BODYSTRUCTURE " + message.bodystructure)
        elif item.name == "BODY" and item.section is None:
            assert message.body is not None
            parts.append(b"BODY " + message.body)
        elif item.name == "BINARY.SIZE":
            assert item.section is not None
            assert message.decoded is not None
            content = message.decoded[item.section.part]
            size = b"NIL" if content is None else b"%d" % len(content)
            parts.append(b"BINARY.SIZE[%s] %s" % (item.section.part.encode(), size))
        elif item.name == "BINARY":
            assert item.section is not None
            assert message.decoded is not None
            content = message.decoded[item.section.part]
            label = b"BINARY[%s]" % item.section.part.encode()
            if item.partial is not None and content is not None:
                start, count = item.partial
                content = content[start : start + count]
                label += b"<%d>" % start
            # RFC 3516 4.3: literal8 when the content holds NUL, which a literal may not.
            value = b"NIL" if content is None else (b"~" + literal(content) if b"\0" in content else literal(content))
            parts.append(label + b" " + value)
        else:
            assert item.section is not None
            assert message.sections is not None
            data = message.sections[item.section]
            label = item.label
            if item.partial is not None and data is not None:
                start, count = item.partial
                data = data[start : start + count]
                label += b"<%d>" % start
            parts.append(label + b" " + (b"NIL" if data is None else literal(data)))
    if include_flags and "FLAGS" not in names:
        parts.append(flags_list(message.flags))
    if include_modseq and "MODSEQ" not in names:
        parts.append(b"MODSEQ (%d)" % message.modseq)
    return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))


class UnknownTransferEncoding(Exception):
    """BINARY of a part whose Content-Transfer-Encoding this server cannot decode: NO [UNKNOWN-CTE]."""


def decoded_content(raw: bytes, root: MimePart, part: str) -> bytes | None:
    """RFC 3516 4.2: a part's content with its transfer encoding undone; None when there is no such part.
    The whole message, and multipart and message parts, are returned as they are."""
    node = root if not part else root.part(part)
    if node is None:
        return None
    if not part:
        return raw[node.header_start : node.body_end]
    data = raw[node.body_start : node.body_end]
    if node.children:
        return data
    if node.encoding == "base64":
        return binascii.a2b_base64(data)  # characters outside the alphabet are skipped (RFC 2045 6.8)
    if node.encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    if node.encoding in ("7bit", "8bit", "binary"):
        return data
    raise UnknownTransferEncoding(node.encoding)


def flags_list(flags: list[str]) -> bytes:
    return b"FLAGS (" + " ".join(flags).encode("utf-8") + b")"
