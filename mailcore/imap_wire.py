"""ENVELOPE and BODYSTRUCTURE in IMAP wire form (RFC 3501 7.4.2, grammar in section 9).

Pure functions of a parsed message, with no Django: the store renders both once at delivery and keeps the
bytes, so FETCH only concatenates them.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from mailcore.mime import Envelope, EnvelopeAddress, MimePart, ParsedMessage

# A quoted string may hold any 7-bit character except CR, LF and NUL (RFC 3501 9, QUOTED-CHAR); longer values
# go as literals too, so no line of a response grows without bound.
_QUOTABLE = re.compile(rb"[^\x00\r\n\x80-\xff]{0,1000}")


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def string(value: str | bytes) -> bytes:
    """A string as a quoted string when it can be one, else a literal."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if _QUOTABLE.fullmatch(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def nstring(value: str | bytes | None) -> bytes:
    return b"NIL" if value is None else string(value)


def _addresses(addresses: list[EnvelopeAddress]) -> bytes:
    # An entry with neither mailbox nor host is no address (a comment alone, as in "group: (none) ;"): RFC 3501
    # 7.4.2 has only addresses and the group markers, which always carry None for the host.
    listed = [a for a in addresses if a.mailbox or a.host is None or a.host]
    if not listed:
        return b"NIL"
    return b"(%s)" % b"".join(
        b"(%s %s %s %s)" % (nstring(a.name), nstring(a.adl), nstring(a.mailbox), nstring(a.host)) for a in listed
    )


def envelope(value: Envelope) -> bytes:
    return b"(%s)" % b" ".join(
        [
            nstring(value.date),
            nstring(value.subject),
            _addresses(value.from_),
            _addresses(value.sender),
            _addresses(value.reply_to),
            _addresses(value.to),
            _addresses(value.cc),
            _addresses(value.bcc),
            nstring(value.in_reply_to),
            nstring(value.message_id),
        ]
    )


# RFC 2231 7: attribute-char, the characters an extended value may carry without %-encoding.
_ATTRIBUTE_CHARS = "!#$&+-.^_`{|}~"


def _param(name: str, value: str) -> bytes:
    """One parameter. The parser keeps values decoded (RFC 2231 continuations joined, charsets applied); a
    value that is not plain ASCII goes out in RFC 2231 extended form, as UTF-8, so the response stays 7-bit and
    clients decode it as they would the header itself."""
    if value.isascii():
        return string(name) + b" " + string(value)
    return string(name + "*") + b" " + string("utf-8''" + quote(value, safe=_ATTRIBUTE_CHARS))


def _params(params: dict[str, str]) -> bytes:
    if not params:
        return b"NIL"
    return b"(%s)" % b" ".join(_param(name, value) for name, value in params.items())


def _disposition(part: MimePart) -> bytes:
    if part.disposition is None:
        return b"NIL"
    return b"(%s %s)" % (string(part.disposition), _params(part.disposition_params))


def _language(part: MimePart) -> bytes:
    # body-fld-lang: one string, or a list when Content-Language names several tags (RFC 3282).
    tags = [tag.strip() for tag in (part.language or "").split(",") if tag.strip()]
    if not tags:
        return b"NIL"
    if len(tags) == 1:
        return string(tags[0])
    return b"(%s)" % b" ".join(string(tag) for tag in tags)


def body_structure(part: MimePart, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (extensible) or BODY (not) of a part (RFC 3501 7.4.2, `body` in section 9)."""
    if part.maintype == "multipart":
        children = b"".join(body_structure(child, extensible) for child in part.children)
        fields = [children, string(part.subtype)]
        if extensible:
            fields += [_params(part.params), _disposition(part), _language(part), nstring(part.location)]
        return b"(%s)" % b" ".join(fields)
    fields = [
        string(part.maintype),
        string(part.subtype),
        _params(part.params),
        nstring(part.content_id),
        nstring(part.description),
        string(part.encoding.upper()),
        b"%d" % part.size,
    ]
    if part.content_type == "message/rfc822" and part.children and part.envelope is not None:
        fields += [envelope(part.envelope), body_structure(part.children[0], extensible), b"%d" % part.lines]
    elif part.maintype == "text":
        fields.append(b"%d" % part.lines)
    if extensible:
        fields += [nstring(part.md5), _disposition(part), _language(part), nstring(part.location)]
    return b"(%s)" % b" ".join(fields)


def message_wire(parsed: ParsedMessage) -> tuple[bytes, bytes, bytes]:
    """(ENVELOPE, BODYSTRUCTURE, BODY) of a message, as stored at delivery."""
    return envelope(parsed.envelope), body_structure(parsed.root), body_structure(parsed.root, extensible=False)
