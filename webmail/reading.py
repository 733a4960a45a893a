"""What the reading pane shows of a stored message: its body parts, inline images and attachments.

Parts are addressed by their index in `MimePart.walk()` order, which is stable for a stored structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings

from mailauth import summary
from mailboxes.models import Message
from mailcore.mime import MimePart, decode_body, html_to_text, part_text

# Attachment types the browser shows in its own viewer without running anything of the sender's. No SVG: an
# SVG document can hold scripts. (Served by `webmail.views.attachments`.)
PREVIEWED = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "application/pdf"})


@dataclass
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int  # decoded size in bytes, estimated from the encoded size for base64

    @property
    def previewable(self) -> bool:
        return self.content_type in PREVIEWED


@dataclass
class Body:
    index: int
    is_html: bool
    label: str = ""  # a heading for parts that are not the message's own text (a delivery report)


# The machine-readable parts of a delivery report (RFC 3464 2, RFC 6533 6.1, RFC 6522 4) are plain text a
# person can read: shown as such under a heading, not offered as a file called "part-2.deliveryst".
REPORT_PARTS = {
    "message/delivery-status": "Delivery report",
    "message/global-delivery-status": "Delivery report",
    "message/disposition-notification": "Read receipt",
    "text/rfc822-headers": "Header of the returned message",
}


def _contains(part: MimePart, content_type: str) -> bool:
    return any(p.content_type == content_type and p.disposition != "attachment" for p in part.walk())


def _body_parts(part: MimePart, out: list[MimePart]) -> None:
    """The text/plain and text/html leaves a reader sees, preferring HTML within multipart/alternative."""
    if part.disposition == "attachment":
        return
    if part.content_type in ("text/plain", "text/html") or part.content_type in REPORT_PARTS:
        out.append(part)
    elif part.content_type == "multipart/alternative":
        chosen = next((c for c in reversed(part.children) if _contains(c, "text/html")), None)
        if chosen is None:
            chosen = next((c for c in part.children if _contains(c, "text/plain")), None)
        if chosen is not None:
            _body_parts(chosen, out)
    elif part.maintype == "multipart":
        for child in part.children:
            _body_parts(child, out)


def _decoded_size(part: MimePart) -> int:
    return part.size * 3 // 4 if part.encoding == "base64" else part.size


class Reading:
    """A stored message's structure, resolved for display."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.root = MimePart.from_json(message.structure)
        self.parts = self.root.walk()
        bodies: list[MimePart] = []
        _body_parts(self.root, bodies)
        body_ids = {id(p) for p in bodies}
        # Parts inside a forwarded message belong to it: the .eml attachment carries them.
        enclosed = {
            id(inner)
            for p in self.parts
            if p.content_type == "message/rfc822" and p is not self.root
            for inner in p.walk()[1:]
        }
        self.bodies = [
            Body(i, p.content_type == "text/html", REPORT_PARTS.get(p.content_type, ""))
            for i, p in enumerate(self.parts)
            if id(p) in body_ids
        ]
        self.attachments = [
            Attachment(i, p.filename or _fallback_name(p, i), p.content_type, _decoded_size(p))
            for i, p in enumerate(self.parts)
            if id(p) not in body_ids and id(p) not in enclosed and _is_attachment(p, self.root)
        ]

    @cached_property
    def authentication(self) -> summary.Summary | None:
        """Who our MX verified the message as coming from, read from its own Authentication-Results only."""
        return summary.summarise(bytes(self.message.body.raw), settings.MAILSITE_HOSTNAME)

    def part(self, index: int) -> MimePart | None:
        return self.parts[index] if 0 <= index < len(self.parts) else None

    def inline(self, raw: bytes, content_id: str) -> tuple[str, bytes] | None:
        """(content type, bytes) of the part whose Content-ID is `content_id`, for cid: URLs (RFC 2392)."""
        for part in self.parts:
            if part.content_id and part.content_id.strip().strip("<>") == content_id:
                return part.content_type, decode_body(raw, part)
        return None

    def text(self, raw: bytes) -> str:
        """The readable text of the message (plain text preferred, HTML reduced to text), for quoting."""
        pieces = []
        for part in self.text_parts():
            content = part_text(raw, part)
            pieces.append(html_to_text(content) if part.subtype == "html" else content.replace("\r\n", "\n"))
        return "\n\n".join(piece.strip("\n") for piece in pieces if piece.strip())

    def text_parts(self) -> list[MimePart]:
        """Like `bodies`, but preferring text/plain within multipart/alternative, as quoting wants."""
        out: list[MimePart] = []
        stack = [self.root]
        while stack:
            part = stack.pop()
            if part.disposition == "attachment":
                continue
            if part.content_type in ("text/plain", "text/html"):
                out.append(part)
            elif part.content_type == "multipart/alternative":
                chosen = next((c for c in part.children if _contains(c, "text/plain")), None)
                chosen = chosen or next((c for c in reversed(part.children) if _contains(c, "text/html")), None)
                if chosen is not None:
                    stack.append(chosen)
            elif part.maintype == "multipart":
                stack.extend(reversed(part.children))
        return out


def _is_attachment(part: MimePart, root: MimePart) -> bool:
    if part.maintype == "multipart" or part is root:
        return False
    if part.disposition == "attachment" or part.content_type == "message/rfc822":
        return True
    if part.maintype == "image" and part.content_id and part.disposition != "attachment":
        return False  # an inline image referenced from the HTML by cid:
    return part.filename is not None or part.maintype not in ("text",)


def _fallback_name(part: MimePart, index: int) -> str:
    if part.content_type == "message/rfc822":
        return f"message-{index}.eml"
    extension = re.sub(r"[^a-z0-9]", "", part.subtype)[:10] or "bin"
    return f"part-{index}.{extension}"
