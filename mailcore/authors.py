"""Who wrote a message, read once, for decisions that authorise: which addresses a submission may use in From:
and which domain the relay signs for.

Two parsers read the From field: ours (`mailcore.headers`, used for display and envelopes) and the standard
library's (what most verifiers and DKIM signers downstream use). When they disagree, or the field is of a
shape that readers are known to take differently (a display name that looks like an address, unbalanced
comments or quotes, several From fields, several authors without a Sender, groups), the message is refused
rather than guessed at: an author that one reader sees as alice@a.example and another as ceo@b.example would
let one tenant's user send mail that carries another tenant's valid DKIM signature.
"""

from __future__ import annotations

from email import policy
from email.errors import HeaderParseError
from email.parser import BytesHeaderParser

from mailcore.fields import field_values, has_field
from mailcore.headers import decode_words, header_str, parse_address_list


class AmbiguousAuthor(ValueError):
    """From: cannot be read one way only; the text says why, for the SMTP reply and the webmail."""


def _balanced(text: str) -> bool:
    """Comments, quoted strings and angle brackets all closed, in the order RFC 5322 3.2 nests them."""
    depth = 0
    quoted = angle = False
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif ch == '"' and depth == 0:
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0 and ch == "<":
            if angle:
                return False
            angle = True
        elif depth == 0 and ch == ">":
            if not angle:
                return False
            angle = False
    return depth == 0 and not quoted and not angle and not escaped


def _stdlib_authors(raw: bytes) -> list[str]:
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    field = headers["from"]
    if field is None or getattr(field, "defects", None):
        raise AmbiguousAuthor("the From: field is malformed")
    return [address.addr_spec.lower() for address in field.addresses]


def authors(raw: bytes) -> list[str]:
    """The author addresses of the message (lower-cased), or AmbiguousAuthor saying why none can be trusted."""
    values = field_values(raw, b"From")
    if len(values) != 1:
        raise AmbiguousAuthor("the message must have exactly one From: field (RFC 5322 3.6)")
    text = header_str(values[0])
    if not _balanced(text):
        raise AmbiguousAuthor("the From: field has an unbalanced comment, quote or angle bracket")
    items = parse_address_list(text)
    if any(kind != "mailbox" for kind, *_ in items):
        raise AmbiguousAuthor("the From: field may not hold a group")
    ours = []
    for _, name, local, domain in items:
        if not domain or not local:
            raise AmbiguousAuthor("every From: mailbox needs a full address")
        if "@" in name or "@" in decode_words(name):
            raise AmbiguousAuthor("a From: display name may not look like an address")
        ours.append(f"{local}@{domain}".lower())
    if not ours:
        raise AmbiguousAuthor("the From: field names no author")
    if len(ours) > 1 and not has_field(raw, b"Sender"):
        raise AmbiguousAuthor("several From: authors need a Sender: field (RFC 5322 3.6.2)")
    try:
        theirs = _stdlib_authors(raw)
    except (HeaderParseError, ValueError, IndexError, AttributeError) as exc:
        raise AmbiguousAuthor("the From: field cannot be read unambiguously") from exc
    if sorted(theirs) != sorted(ours):
        raise AmbiguousAuthor("the From: field reads differently to different mail software")
    return ours


def author_domain(addresses: list[str]) -> str:
    """The domain that signs for these authors: the first author's (all are the sender's own by then)."""
    return addresses[0].rpartition("@")[2]
