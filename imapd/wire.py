"""ENVELOPE and BODYSTRUCTURE on the wire (RFC 3501 7.4.2), rendered from the JSON stored at delivery."""

from __future__ import annotations

from typing import Any

from imapd.protocol import nstring, string
from mailcore.mime import Envelope, EnvelopeAddress, MimePart


def _addresses(addresses: list[EnvelopeAddress]) -> bytes:
    if not addresses:
        return b"NIL"
    return (
        b"("
        + b"".join(
            b"(%s %s %s %s)" % (nstring(a.name), nstring(a.adl), nstring(a.mailbox), nstring(a.host)) for a in addresses
        )
        + b")"
    )


def envelope(envelope: Envelope) -> bytes:
    return b"(%s)" % b" ".join(
        [
            nstring(envelope.date),
            nstring(envelope.subject),
            _addresses(envelope.from_),
            _addresses(envelope.sender),
            _addresses(envelope.reply_to),
            _addresses(envelope.to),
            _addresses(envelope.cc),
            _addresses(envelope.bcc),
            nstring(envelope.in_reply_to),
            nstring(envelope.message_id),
        ]
    )


def envelope_json(data: dict[str, Any]) -> bytes:
    return envelope(Envelope.from_json(data))


def _params(params: dict[str, str]) -> bytes:
    if not params:
        return b"NIL"
    return b"(%s)" % b" ".join(string(name) + b" " + string(value) for name, value in params.items())


def _disposition(part: MimePart) -> bytes:
    if part.disposition is None:
        return b"NIL"
    return b"(%s %s)" % (string(part.disposition), _params(part.disposition_params))


def _language(part: MimePart) -> bytes:
    if part.language is None:
        return b"NIL"
    tags = [tag.strip() for tag in part.language.split(",") if tag.strip()]
    if len(tags) == 1:
        return string(tags[0])
    return b"(%s)" % b" ".join(string(tag) for tag in tags) if tags else b"NIL"


def body_structure(part: MimePart, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (extensible) or BODY (not) of a part (RFC 3501 7.4.2, body in section 9)."""
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
