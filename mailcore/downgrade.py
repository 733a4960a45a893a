"""Header fields in 7-bit form for IMAP clients that did not enable UTF8=ACCEPT (RFC 6855 3 and 5: such a
client is not sent UTF-8 header data; the server downgrades it, with the methods of RFC 6857 3).

Pure functions on bytes: `envelope` and `body_structure` rewrite a stored ENVELOPE or BODYSTRUCTURE (in
mailcore.imap_wire's form), `header` a header block as BODY[HEADER] or BODY[HEADER.FIELDS (...)] give it.
ASCII input comes back as it is.
- Unstructured text (Subject, unknown fields): each run of words with non-ASCII characters becomes RFC 2047
  "B" encoded-words in UTF-8 (RFC 6857 3.1.5, 3.1.6).
- Display names and group names: encoded-words (RFC 2047 5(3)); domains: IDNA A-labels (RFC 6857 3.1.10);
  an address whose local part is not ASCII becomes an empty group named by the encoded address, "=?...?= :;"
  (RFC 6857 3.1.10), or is left out inside a group, which cannot hold another.
- Message-ID, In-Reply-To and References holding non-ASCII cannot be encoded: the field is renamed
  Downgraded-<name> with its text encoded (RFC 6857 3.1.9, 3.2), so ENVELOPE has NIL for it.
"""

from __future__ import annotations

import base64
import re

from mailcore.headers import header_str, parse_address_list
from mailcore.idn import ascii_domain
from mailcore.imap_wire import envelope as render_envelope
from mailcore.imap_wire import nstring
from mailcore.mime import Envelope, EnvelopeAddress

# RFC 2047 2: an encoded-word is at most 75 characters; "=?UTF-8?B?" and "?=" leave 63 for base64, which is
# 45 bytes of UTF-8.
_WORD_BYTES = 45
_RESENT = (b"from", b"sender", b"to", b"cc", b"bcc")
_ADDRESS_FIELDS = frozenset((b"reply-to", *_RESENT, *(b"resent-" + name for name in _RESENT)))
_ID_FIELDS = frozenset([b"message-id", b"in-reply-to", b"references", b"resent-message-id"])
_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be no longer


def encoded_phrase(text: str) -> str:
    """`text` as encoded-words (UTF-8, "B"), split at character boundaries, separated by spaces, which a
    decoder drops between encoded-words (RFC 2047 6.2)."""
    words: list[bytes] = []
    chunk = b""
    for ch in text:
        data = ch.encode("utf-8", "surrogatepass")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return " ".join(f"=?UTF-8?B?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def encoded_words(text: str) -> str:
    """Unstructured text with each run of non-ASCII words (and the spaces between them) encoded; ASCII words
    and the spaces around them stay as they are."""
    tokens = re.split(r"(\s+)", text)  # words at even positions, whitespace at odd ones
    out: list[str] = []
    pos = 0
    while pos < len(tokens):
        if pos % 2 or tokens[pos].isascii():
            out.append(tokens[pos])
            pos += 1
            continue
        end = pos
        while end + 2 < len(tokens) and not tokens[end + 2].isascii():
            end += 2
        out.append(encoded_phrase("".join(tokens[pos : end + 1])))
        pos = end + 1
    return "".join(out)


def _ascii_host(host: str) -> str | None:
    """A domain in A-labels, or None when it has none (it is not a valid IDN)."""
    if host.isascii():
        return host
    converted = ascii_domain(host)
    return converted if converted.isascii() else None


def _address_label(name: str, local: str, host: str | None) -> str:
    address = local if host is None else f"{local}@{host}"
    return f"{name} <{address}>" if name else address


# --- ENVELOPE ---------------------------------------------------------------------------------------------------


class _Atom(bytes):
    """A number in a BODYSTRUCTURE, written back as it is."""


Node = bytes | None | list["Node"]
_ATOM = re.compile(rb"[^ ()\"{]+")


def _parse(data: bytes, pos: int) -> tuple[Node, int]:
    """One item of an ENVELOPE or BODYSTRUCTURE as mailcore.imap_wire writes it: a list, NIL, a quoted string,
    a literal or a number."""
    first = data[pos : pos + 1]
    if first == b"(":
        items: list[Node] = []
        pos += 1
        while data[pos : pos + 1] != b")":
            if data[pos : pos + 1] == b" ":
                pos += 1
                continue
            item, pos = _parse(data, pos)
            items.append(item)
        return items, pos + 1
    if data.startswith(b"NIL", pos):
        return None, pos + 3
    if first == b'"':
        out = bytearray()
        pos += 1
        while data[pos : pos + 1] != b'"':
            if data[pos : pos + 1] == b"\\":
                pos += 1
            out += data[pos : pos + 1]
            pos += 1
        return bytes(out), pos + 1
    if first == b"{":
        close = data.index(b"}\r\n", pos)
        start = close + 3
        end = start + int(data[pos + 1 : close])
        return data[start:end], end
    match = _ATOM.match(data, pos)
    if match is None:
        raise ValueError(f"unexpected byte at {pos} of a response")
    return _Atom(match[0]), match.end()


def _string(node: Node) -> str | None:
    assert not isinstance(node, list)
    return None if node is None else header_str(node)


def _text(node: Node) -> str | None:
    text = _string(node)
    return None if text is None else encoded_words(text)


def _envelope_addresses(node: Node) -> list[EnvelopeAddress]:
    out: list[EnvelopeAddress] = []
    in_group = False
    for item in node or []:
        assert isinstance(item, list)
        assert len(item) == 4
        name, adl, local, host = (_string(part) for part in item)
        if host is None:  # a group marker (RFC 3501 7.4.2)
            in_group = local is not None
            out.append(EnvelopeAddress(None, None, None if local is None else encoded_words(local), None))
            continue
        ascii_host = _ascii_host(host)
        if local is not None and local.isascii() and ascii_host is not None:
            shown = None if name is None or name.isascii() else encoded_phrase(name)
            out.append(EnvelopeAddress(shown or name, adl, local, ascii_host))
        elif not in_group:
            label = encoded_phrase(_address_label(name or "", local or "", host))
            out += [EnvelopeAddress(None, None, label, None), EnvelopeAddress(None, None, None, None)]
    return out


def envelope(wire: bytes) -> bytes:
    """A stored ENVELOPE with every string in 7-bit form."""
    if wire.isascii():
        return wire
    return _envelope(_parse(wire, 0)[0])


def _envelope(fields: Node) -> bytes:
    assert isinstance(fields, list)
    assert len(fields) == 10
    date, subject, *lists, in_reply_to, message_id = fields
    ids = [_string(node) for node in (in_reply_to, message_id)]
    from_, sender, reply_to, to, cc, bcc = (_envelope_addresses(node) for node in lists)
    return render_envelope(
        Envelope(
            date=_text(date),
            subject=_text(subject),
            from_=from_,
            sender=sender,
            reply_to=reply_to,
            to=to,
            cc=cc,
            bcc=bcc,
            in_reply_to=ids[0] if ids[0] is None or ids[0].isascii() else None,
            message_id=ids[1] if ids[1] is None or ids[1].isascii() else None,
        )
    )


# --- BODYSTRUCTURE ---------------------------------------------------------------------------------------------


def _render(node: Node) -> bytes:
    if isinstance(node, _Atom):
        return bytes(node)
    if isinstance(node, list):
        return b"(%s)" % b" ".join(_render(item) for item in node)
    return nstring(node if node is None or node.isascii() else encoded_words(header_str(node)))


def _body(node: Node) -> bytes:
    """One body of a BODYSTRUCTURE or BODY: a message/rfc822 part's ENVELOPE downgraded as `envelope` does, its
    body in turn, and any other 8-bit string (a Content-Description) as encoded-words."""
    assert isinstance(node, list)
    children = 0
    while children < len(node) and isinstance(node[children], list):
        children += 1
    if children:  # multipart: the bodies, with no space between them (RFC 3501 9, body-type-mpart)
        rest = b"".join(b" " + _render(item) for item in node[children:])
        return b"(%s%s)" % (b"".join(_body(child) for child in node[:children]), rest)
    kind = [item.upper() if isinstance(item, bytes) else b"" for item in node[:2]]
    if kind[0] == b"MESSAGE" and kind[1] in (b"RFC822", b"GLOBAL") and len(node) >= 10:
        rendered = [_render(item) for item in node]
        rendered[7], rendered[8] = _envelope(node[7]), _body(node[8])
        return b"(%s)" % b" ".join(rendered)
    return _render(node)


def body_structure(wire: bytes) -> bytes:
    """A stored BODYSTRUCTURE or BODY with every string in 7-bit form."""
    if wire.isascii():
        return wire
    return _body(_parse(wire, 0)[0])


# --- Header blocks ----------------------------------------------------------------------------------------------

_FIELD_LINES = re.compile(rb"[^\n]*\n(?:[ \t][^\n]*\n)*|[^\n]+\Z")


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _address_field(text: str) -> str:
    entries: list[str] = []
    group: list[str] | None = None
    group_name = ""
    for kind, name, local, domain in parse_address_list(text):
        if kind == "group":
            group, group_name = [], encoded_words(name)
            continue
        if kind == "end":
            if group is not None:
                entries.append(f"{group_name}: {', '.join(group)};")
            group = None
            continue
        host = None if domain is None else _ascii_host(domain)
        if local.isascii() and (domain is None or host is not None):
            address = local if host is None else f"{local}@{host}"
            shown = "" if not name else _quoted(name) if name.isascii() else encoded_phrase(name)
            rendered = f"{shown} <{address}>" if shown else address
        elif group is None:
            rendered = f"{encoded_phrase(_address_label(name, local, domain))} :;"
        else:
            continue
        (entries if group is None else group).append(rendered)
    if group is not None:
        entries.append(f"{group_name}: {', '.join(group)};")
    return ", ".join(entries)


def _fold(name: bytes, value: str) -> bytes:
    """`name: value` with folding at spaces so lines stay within 78 characters where words allow."""
    lines = [name.decode("ascii") + ":"]
    for word in value.split(" "):
        if len(lines[-1]) + 1 + len(word) > _LINE and lines[-1].strip():
            lines.append("")
        lines[-1] += " " + word
    return "\r\n".join(lines).encode("ascii") + b"\r\n"


def header(block: bytes) -> bytes:
    """A header block (fields, then the blank line if it had one) with every 8-bit field in 7-bit form."""
    if block.isascii():
        return block
    out: list[bytes] = []
    for match in _FIELD_LINES.finditer(block):
        field = match[0]
        name, colon, value = field.partition(b":")
        if field.isascii():
            out.append(field)
            continue
        if not colon or not name.isascii():  # no field: its 8-bit bytes are shown as "?"
            out.append(bytes(byte if byte < 0x80 else 0x3F for byte in field))
            continue
        key = name.strip().lower()
        text = " ".join(header_str(value).split())
        if key in _ADDRESS_FIELDS:
            out.append(_fold(name.strip(), _address_field(text)))
        elif key in _ID_FIELDS:
            out.append(_fold(b"Downgraded-" + name.strip(), encoded_words(text)))
        else:
            out.append(_fold(name.strip(), encoded_words(text)))
    return b"".join(out)
