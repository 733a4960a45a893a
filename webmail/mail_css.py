"""The `<style>` elements of HTML mail (newsletters), kept instead of dropped, rebuilt from an allow-list.

The style sheet is parsed with tinycss2 and written out again from what the parse allows, never copied:
- rules: plain qualified rules, and `@media` holding them; every other at-rule (`@import`, `@font-face`,
  `@keyframes`, `@namespace`, ...) is dropped, so nothing is fetched and nothing is defined globally;
- selectors: simple characters only (no escapes), each scoped under the element that holds the message
  (`html` and `body` become that element), so a rule styles the message and nothing else of the frame;
- declarations: the properties the style attributes keep (`sanitize.STYLE_PROPERTIES`) and a few of
  backgrounds; functions from a list that fetches nothing; `url()` only once the user chose "Show images", and
  only http(s) in background properties; an `!important` is kept.
A value or selector with `<` is dropped, so the sheet can never close its `<style>` element. The frame's
Content-Security-Policy stays the last line: no fetch but images, and those only after "Show images".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tinycss2
from tinycss2 import ast

SCOPE = ".mail-root"  # the element that holds the message in the frame (webmail.sanitize.clean)
MAX_CSS = 200_000  # characters of style sheet read from one message
FUNCTIONS = {"rgb", "rgba", "hsl", "hsla", "calc", "min", "max", "clamp", "linear-gradient", "radial-gradient"}
URL_PROPERTIES = {"background", "background-image"}
EXTRA_PROPERTIES = URL_PROPERTIES | {
    "background-position", "background-repeat", "background-size", "box-sizing", "list-style-type",
    "max-height", "min-height", "overflow", "text-overflow",
}  # fmt: skip
_SELECTOR = re.compile(r"^[A-Za-z0-9_\-\s.#:>+~*\[\]=\"'^$|(),]{1,300}$")
_ROOT = re.compile(r"^(?:html\b\s*)?(?:body\b)?", re.I)
_MEDIA = re.compile(r"^[A-Za-z0-9_\-\s:(),.]{1,300}$")
_REMOTE = re.compile(r"^https?://", re.I)


@dataclass
class Sheet:
    css: str
    blocked_images: int  # url() values left out until the user shows images


def clean_stylesheet(css: str, *, show_images: bool, properties: set[str]) -> Sheet:
    sheet = Sheet("", 0)
    allowed = properties | EXTRA_PROPERTIES
    rules = tinycss2.parse_stylesheet(css[:MAX_CSS], skip_comments=True, skip_whitespace=True)
    sheet.css = "\n".join(filter(None, (_rule(rule, sheet, allowed, show_images, nested=False) for rule in rules)))
    return sheet


def _rule(rule, sheet: Sheet, allowed: set[str], show_images: bool, *, nested: bool) -> str:
    if isinstance(rule, ast.QualifiedRule):
        selectors = _selectors(rule.prelude)
        declarations = _declarations(rule.content, sheet, allowed, show_images)
        if not selectors or not declarations:
            return ""
        return f"{', '.join(selectors)} {{ {declarations} }}"
    if isinstance(rule, ast.AtRule) and rule.lower_at_keyword == "media" and not nested and rule.content:
        query = tinycss2.serialize(rule.prelude).strip()
        if not _MEDIA.match(query):
            return ""
        inner = tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True)
        kept = [text for text in (_rule(r, sheet, allowed, show_images, nested=True) for r in inner) if text]
        return f"@media {query} {{ {' '.join(kept)} }}" if kept else ""
    return ""


def _selectors(prelude: list) -> list[str]:
    text = tinycss2.serialize(prelude).strip()
    if not _SELECTOR.match(text) or ("(" in text and not _balanced(text)):
        return []
    scoped = []
    for selector in _split_top_level(text):
        selector = " ".join(selector.split())
        if not selector:
            continue
        root = _ROOT.match(selector)  # matches the empty string at least
        end = root.end() if root else 0
        rest = selector[end:]
        if not end:
            scoped.append(f"{SCOPE} {selector}")
        elif rest[:1] in (".", "#", ":", "["):  # body.newsletter: the message root itself
            scoped.append(f"{SCOPE}{rest}")
        else:
            scoped.append(f"{SCOPE} {rest.strip()}".rstrip())
    return scoped


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _declarations(content: list | None, sheet: Sheet, allowed: set[str], show_images: bool) -> str:
    kept = []
    for item in tinycss2.parse_declaration_list(content or [], skip_comments=True, skip_whitespace=True):
        if not isinstance(item, ast.Declaration) or item.lower_name not in allowed:
            continue
        verdict = _value_verdict(item.value, item.lower_name, show_images)
        if verdict == "image":
            sheet.blocked_images += 1
            continue
        value = tinycss2.serialize(item.value).strip()
        if verdict != "ok" or not value or "<" in value or "\\" in value:
            continue
        kept.append(f"{item.lower_name}: {value}{' !important' if item.important else ''}")
    return "; ".join(kept)


def _value_verdict(tokens: list, name: str, show_images: bool) -> str:
    """ "ok", "image" (a URL held back until images are shown) or "bad" (never kept)."""
    for token in tokens:
        if isinstance(token, ast.URLToken) or (isinstance(token, ast.FunctionBlock) and token.lower_name == "url"):
            url = token.value if isinstance(token, ast.URLToken) else _string_argument(token)
            if name not in URL_PROPERTIES or url is None or not _REMOTE.match(url):
                return "bad"
            if not show_images:
                return "image"
            continue
        if isinstance(token, ast.FunctionBlock):
            if token.lower_name not in FUNCTIONS:
                return "bad"
            inner = _value_verdict(token.arguments, name, show_images)
            if inner != "ok":
                return inner
        elif isinstance(token, ast.AtKeywordToken | ast.CurlyBracketsBlock | ast.ParseError):
            return "bad"
        elif isinstance(token, ast.SquareBracketsBlock | ast.ParenthesesBlock):
            inner = _value_verdict(token.content, name, show_images)
            if inner != "ok":
                return inner
    return "ok"


def _string_argument(function: ast.FunctionBlock) -> str | None:
    strings = [t for t in function.arguments if not isinstance(t, ast.WhitespaceToken)]
    if len(strings) == 1 and isinstance(strings[0], ast.StringToken):
        return strings[0].value
    return None
