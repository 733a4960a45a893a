"""The message as Sieve tests see it, read from the stored bytes and the `mailcore.mime` parse of delivery.

Header fields are split here because `mailcore.mime` keeps only the fields lists need, while Sieve may test
any field; the split follows the same rules as `mailcore.mime._read_header` (a field name up to ":", lines
starting with a space or tab continue it, the block ends at the root part's header end). Values are unfolded,
stripped, and RFC 2047-decoded as RFC 5228 2.7.2 asks; addresses go through `mailcore.headers`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from functools import cached_property

from mailcore.headers import decode_words, header_str, parse_address_list
from mailcore.mime import MimePart, ParsedMessage, decode_body, html_to_text, part_text

# RFC 5322 2.2: printable ASCII except ":", optional obsolete whitespace before the colon (as mailcore.mime).
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")


# Body tests (RFC 5173) read at most this much of each part, and of the raw body: a huge message costs no more
# than this to test (Pigeonhole bounds its body extraction the same way).
MAX_BODY_BYTES = 1024 * 1024


def _bounded(part: MimePart) -> MimePart:
    if part.body_end - part.body_start <= MAX_BODY_BYTES:
        return part
    return dataclasses.replace(part, body_end=part.body_start + MAX_BODY_BYTES)


class MessageView:
    """One message for the script runs of its recipients. A script tests the same fields again and again (twenty
    rules on Subject and From are usual): each field's values are decoded, and its addresses parsed, once."""

    def __init__(self, raw: bytes, parsed: ParsedMessage) -> None:
        self.raw = raw
        self.parsed = parsed
        self._headers: dict[str, list[str]] = {}
        self._addresses: dict[str, list[tuple[str, str | None]]] = {}

    @property
    def size(self) -> int:
        return len(self.raw)

    @cached_property
    def fields(self) -> list[tuple[str, bytes]]:
        """(lower-case name, raw unfolded value) of every header field of the message, in order."""
        root = self.parsed.root
        block = self.raw[root.header_start : root.header_end]
        fields: list[tuple[str, bytes]] = []
        for line in block.split(b"\n"):
            line = line.removesuffix(b"\r")
            if line[:1] in (b" ", b"\t"):
                if fields:
                    name, value = fields[-1]
                    fields[-1] = (name, value + line)
                continue
            m = _FIELD.match(line)
            if m is not None:
                fields.append((m[1].decode("ascii").lower(), line[m.end() :]))
        return fields

    @cached_property
    def _by_name(self) -> dict[str, list[bytes]]:
        by_name: dict[str, list[bytes]] = {}
        for name, value in self.fields:
            by_name.setdefault(name, []).append(value)
        return by_name

    def raw_values(self, name: str) -> list[str]:
        """Undecoded values of the fields called `name`, as text."""
        return [header_str(value).strip() for value in self._by_name.get(name.lower(), ())]

    def header(self, name: str) -> list[str]:
        name = name.lower()
        if name not in self._headers:
            self._headers[name] = [decode_words(value) for value in self.raw_values(name)]
        return list(self._headers[name])

    def addresses(self, name: str) -> list[tuple[str, str | None]]:
        """(local part, domain) of each mailbox in the named fields; group names are not addresses (5.1)."""
        name = name.lower()
        if name not in self._addresses:
            self._addresses[name] = [
                (local, domain)
                for value in self.raw_values(name)
                for kind, _name, local, domain in parse_address_list(value)
                if kind == "mailbox"
            ]
        return list(self._addresses[name])

    def body_raw(self) -> str:
        start = self.parsed.root.body_start
        return header_str(self.raw[start : start + MAX_BODY_BYTES])

    def body_parts(self, types: Sequence[str] | None) -> list[str]:
        """Decoded text of the leaf parts whose type matches (RFC 5173 5.2); None means :text."""
        texts: list[str] = []
        for part in self.parsed.root.walk():
            if part.children:
                continue
            part = _bounded(part)
            if types is None:
                # RFC 5173 5.3: :text is the text of text/* parts, HTML with its markup removed.
                if part.content_type == "text/html":
                    texts.append(html_to_text(part_text(self.raw, part)))
                elif part.maintype == "text":
                    texts.append(part_text(self.raw, part))
            elif any(_type_matches(part, wanted) for wanted in types):
                texts.append(_content(self.raw, part))
        return texts


def _type_matches(part: MimePart, wanted: str) -> bool:
    wanted = wanted.lower()
    if wanted == "":
        return True
    if "/" in wanted:
        return part.content_type == wanted
    return part.maintype == wanted


def _content(raw: bytes, part: MimePart) -> str:
    if part.maintype == "text":
        return part_text(raw, part)
    return header_str(decode_body(raw, part))
