"""Authentication-Results (RFC 8601): our header field, and removal of forged ones (byte level, pure).

The stored message is the received bytes plus trace fields, so nothing here re-serialises a message: forged
fields are cut out of the header block as they are, and ours is prepended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailcore.fields import header_end

# One header field with its folded continuation lines (RFC 5322 2.2.3).
_AR_FIELD = re.compile(rb"(?im)^authentication-results[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*(?:\r\n|$)")
_COMMENT = re.compile(rb"\((?:[^()\\]|\\.)*\)")
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")  # RFC 2045 5.1 token characters
_PROPERTY_VALUE = re.compile(r"^[!#$%&'*+\-./0-9=?A-Z^_`a-z{|}~@]+$")  # RFC 8601 2.2 pvalue, simplified


def authserv_id(field: bytes) -> str:
    """The authserv-id of an Authentication-Results field (its first value, RFC 8601 2.2), lower-cased."""
    value = field.split(b":", 1)[1]
    value = re.sub(rb"\r\n([ \t])", rb"\1", value)
    # Comments may nest in theory; two passes remove what real headers carry.
    value = _COMMENT.sub(b" ", _COMMENT.sub(b" ", value))
    first = value.split(b";", 1)[0].strip()
    if first.startswith(b'"'):  # RFC 8601 2.2: authserv-id is a value, so possibly a quoted-string
        first = first[1:].split(b'"', 1)[0]
    else:
        words = first.split()  # a version may follow the authserv-id ("example.net 1")
        first = words[0] if words else b""
    return first.decode("utf-8", "replace").lower().rstrip(".")


def remove_forged(raw: bytes, our_id: str) -> tuple[bytes, int]:
    """RFC 8601 5: fields claiming our authserv-id did not come from us; the message without them, and how
    many there were. Every other byte stays as received."""
    end = header_end(raw)
    ours = our_id.lower().rstrip(".")
    removed = 0

    def drop(match: re.Match[bytes]) -> bytes:
        nonlocal removed
        if authserv_id(match.group(0)) == ours:
            removed += 1
            return b""
        return match.group(0)

    head = _AR_FIELD.sub(drop, raw[:end])
    return (head + raw[end:], removed) if removed else (raw, 0)


def _value(text: str) -> str:
    """A property value or reason as a token when it is one, else as a quoted-string (RFC 2045, RFC 5322)."""
    if _PROPERTY_VALUE.match(text):
        return text
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)[:200]
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def method_result(
    method: str, result: str, properties: Iterable[tuple[str, str]] = (), *, reason: str = "", comment: str = ""
) -> str:
    """One resinfo: "dkim=pass header.d=example.net" (RFC 8601 2.2, 2.7)."""
    text = f"{method}={result}"
    if comment:
        text += f" ({_comment(comment)})"
    if reason:
        text += f" reason={_value(reason)}"
    for name, value in properties:
        if value:
            text += f" {name}={_value(value)}"
    return text


def _comment(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() and ch not in "()\\" else "?" for ch in text)
    return cleaned[:200]


def field(our_id: str, results: Iterable[str]) -> bytes:
    """The complete header field, one resinfo per folded line; "none" when no method gave a result."""
    parts = list(results)
    value = f"Authentication-Results: {our_id}"
    if not parts:
        return (value + "; none\r\n").encode("utf-8")
    value += ";\r\n\t" + ";\r\n\t".join(parts)
    return (value + "\r\n").encode("utf-8")
