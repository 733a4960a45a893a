"""HTML mail made safe to show: nh3 (ammonia) with an allow-list, plus the policy the sandboxed frame runs under.

Defence in depth: the sanitiser removes scripts, event handlers, forms, frames, `<base>`, `<meta>`, `<link>`
and every URL scheme but http(s)/mailto on links; `<style>` elements are rebuilt from an allow-list and scoped
to the message (`webmail.mail_css`); remote images are removed until the user asks for
them; `cid:` images become data: URLs of the message's own parts. The frame is then sandboxed without scripts
or same-origin, and its Content-Security-Policy forbids every fetch except data: images (and http(s) images once
"show images" was clicked), so even markup the sanitiser missed can neither run nor reach the network.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import nh3

from webmail import mail_css

TAGS = {
    "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption", "center", "cite", "code",
    "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
}  # fmt: skip
# Removed together with their content: executable, invisible or structural elements.
DROPPED_WITH_CONTENT = {"script", "style", "head", "title", "template", "noscript", "xmp", "iframe", "object",
                        "embed", "frameset", "noembed", "math", "svg", "select", "textarea"}  # fmt: skip
ATTRIBUTES = {
    "*": {"align", "bgcolor", "border", "class", "color", "dir", "height", "lang", "style", "title", "valign", "width"},
    "a": {"href", "name"},
    "img": {"alt", "src"},
    "font": {"face", "size"},
    "table": {"cellpadding", "cellspacing"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "nowrap"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "li": {"value"},
}
# CSS properties kept in style attributes: layout, text and colour only. Anything that can hold a URL
# (background, background-image, list-style, border-image, cursor, content, behavior) is dropped.
STYLE_PROPERTIES = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-radius", "border-right", "border-spacing", "border-style", "border-top", "border-width", "clear",
    "color", "direction", "display", "float", "font", "font-family", "font-size", "font-style", "font-weight",
    "height", "letter-spacing", "line-height", "margin", "margin-bottom", "margin-left", "margin-right",
    "margin-top", "max-width", "min-width", "padding", "padding-bottom", "padding-left", "padding-right",
    "padding-top", "table-layout", "text-align", "text-decoration", "text-indent", "text-transform",
    "vertical-align", "white-space", "width", "word-break", "word-spacing",
}  # fmt: skip
_DATA_IMAGE = re.compile(r"^data:image/(?:png|gif|jpe?g|webp|bmp);base64,[A-Za-z0-9+/=\s]*$", re.I)
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)
_LINK_SCHEMES = re.compile(r"^\s*(?:https?:|mailto:)", re.I)
_CSS_HAZARD = re.compile(r"expression|url\s*\(|image-set|@import|javascript:|\\|/\*", re.I)
INLINE_IMAGE_LIMIT = 5 * 1024 * 1024  # bytes of one cid: image inlined as a data: URL


@dataclass
class CleanResult:
    html: str
    blocked_images: int = 0
    inline_ids: set[str] = field(default_factory=set)  # Content-IDs shown inline


def clean(markup: str, *, show_images: bool, inline: Callable[[str], tuple[str, bytes] | None]) -> CleanResult:
    """Sanitised HTML for the mail frame. `inline(content_id)` returns (content type, bytes) of a cid: part."""
    result = CleanResult("")

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            return _image_source(value, show_images, inline, result)
        if tag == "a" and attribute == "href":
            return value if _LINK_SCHEMES.match(value) else None
        if attribute == "style":
            # Escapes and functions in CSS values can hide URLs and scripts from the property filter, so any
            # declaration holding one is dropped whole; nh3 then keeps only the allowed properties.
            return ";".join(d for d in value.split(";") if not _CSS_HAZARD.search(d)) or None
        return value

    # <style> elements are read apart (nh3 drops them with their content) and rebuilt from an allow-list.
    sheet = mail_css.clean_stylesheet(_style_sheets(markup), show_images=show_images, properties=STYLE_PROPERTIES)
    result.blocked_images += sheet.blocked_images
    body = nh3.clean(
        markup,
        tags=TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes={"http", "https", "mailto", "cid", "data"},
        filter_style_properties=STYLE_PROPERTIES,
    )
    style = f"<style>{sheet.css}</style>" if sheet.css else ""
    result.html = f'{style}<div class="{mail_css.SCOPE[1:]}">{body}</div>'
    return result


def clean_outgoing(markup: str, *, inline: Callable[[str], tuple[str, bytes] | None] | None = None) -> str:
    """HTML the user wrote in the editor (or a message quoted into it), kept to the same allow-list before it
    is sent or saved: no scripts, styles sheets, forms or frames; links http(s)/mailto; images http(s) or
    data: (pasted ones; `cid:` images of a quoted message become data: URLs through `inline`)."""
    sink = CleanResult("")

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            return _image_source(value, True, inline or (lambda _cid: None), sink)
        if tag == "a" and attribute == "href":
            return value if _LINK_SCHEMES.match(value) else None
        if attribute == "style":
            return ";".join(d for d in value.split(";") if not _CSS_HAZARD.search(d)) or None
        return value

    return nh3.clean(
        markup,
        tags=TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ATTRIBUTES | {"blockquote": {"type"}},
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes={"http", "https", "mailto", "cid", "data"},
        filter_style_properties=STYLE_PROPERTIES,
    )


def _style_sheets(markup: str) -> str:
    """The contents of the <style> elements, found in one pass (an unclosed one ends the search)."""
    lowered = markup.lower()
    sheets: list[str] = []
    position = 0
    while (start := lowered.find("<style", position)) != -1:
        opened = lowered.find(">", start)
        closed = lowered.find("</style", opened) if opened != -1 else -1
        if closed == -1:
            break
        sheets.append(markup[opened + 1 : closed])
        position = closed + 7
    return "\n".join(sheets)


def _image_source(
    value: str, show_images: bool, inline: Callable[[str], tuple[str, bytes] | None], result: CleanResult
) -> str | None:
    value = value.strip()
    if value[:4].lower() == "cid:":
        content_id = value[4:].strip().strip("<>")
        found = inline(content_id)
        if found is None or len(found[1]) > INLINE_IMAGE_LIMIT or not found[0].startswith("image/"):
            return None
        result.inline_ids.add(content_id)
        content_type = found[0] if re.fullmatch(r"image/[a-z0-9.+-]+", found[0]) else "image/png"
        return f"data:{content_type};base64,{base64.b64encode(found[1]).decode('ascii')}"
    if _REMOTE.match(value):
        if show_images:
            return value
        result.blocked_images += 1
        return None
    if _DATA_IMAGE.match(value) and not value.lower().startswith("data:image/svg"):
        return value
    return None


def frame_policy(show_images: bool) -> str:
    """Content-Security-Policy of the frame document that holds a sanitised HTML body."""
    images = "data: https: http:" if show_images else "data:"
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; form-action 'none'; "
        "base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )


FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.I)
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""


def linkify(text: str) -> str:
    """Plain text escaped for HTML, with http(s) URLs made into links that open in a new tab."""
    pieces: list[str] = []
    pos = 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_TRAILING_PUNCTUATION)
        end = m.start() + len(url)
        pieces.append(html.escape(text[pos : m.start()]))
        href = url if url.lower().startswith("http") else "https://" + url
        pieces.append(f'<a href="{html.escape(href)}" target="_blank" rel="noopener noreferrer">{html.escape(url)}</a>')
        pos = end
    pieces.append(html.escape(text[pos:]))
    return "".join(pieces)
