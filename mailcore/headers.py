"""Decoders for single header fields: charsets, RFC 2047 encoded words, RFC 2231 parameters, address lists,
dates and message ids.

Every function here is total: malformed input yields a best-effort value, never an exception.
"""

from __future__ import annotations

import binascii
import codecs
import datetime
import functools
import re
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

# Labels whose bytes are decoded by sniffing (UTF-8 if valid, else windows-1252): mail labelled ASCII or Latin-1
# carries RFC 6532 UTF-8 or Windows "smart quotes" far more often than the C1 controls Latin-1 would give.
_SNIFFED_CODECS = frozenset({"ascii", "iso8859-1", "cp1252"})

# Labels Python does not know, or knows as a smaller subset than what mailers actually send under them.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "x-mac-roman": "mac-roman",
    "unicode-1-1-utf-7": "utf-7",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
}


@functools.lru_cache(maxsize=256)
def _codec(charset: str) -> str | None:
    """Python codec for a MIME charset label; None when unknown, not a text codec, or to be sniffed."""
    label = charset.strip().strip('"').lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # codecs.lookup also finds bytes-to-bytes codecs ("base64", "zip") that str.decode refuses.
    if not info._is_text_encoding or info.name in _SNIFFED_CODECS:
        return None
    return info.name


def _without_nul(text: str) -> str:
    # NUL is no character of any header or text part (RFC 5322 2.2, 3.5), and no database text column or JSON
    # document can hold it: it reads as U+FFFD, like any other undecodable byte. The stored bytes keep it.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """`data` as text in `charset`; unknown, missing or ASCII/Latin-1 labels are sniffed as UTF-8 then cp1252."""
    codec = _codec(charset) if charset else None
    if codec is not None:
        try:
            return _without_nul(data.decode(codec, "replace"))
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass
    try:
        return _without_nul(data.decode("utf-8"))
    except UnicodeDecodeError:
        return _without_nul(data.decode("cp1252", "replace"))


def header_str(value: bytes) -> str:
    """Raw header bytes as text: UTF-8 (RFC 6532) when valid, else the 8-bit bytes as windows-1252."""
    try:
        return _without_nul(value.decode("utf-8"))
    except UnicodeDecodeError:
        return _without_nul(value.decode("cp1252", "replace"))


# RFC 2047 2: =?charset?encoding?encoded-text?=; RFC 2231 5 allows "charset*language". Encoded text may not
# contain "?"; spaces are tolerated because some mailers put them there unencoded.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?]*)\?=")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def b64decode(data: bytes) -> bytes:
    """Lenient base64: junk characters ignored, missing padding tolerated, a dangling sixth bit dropped."""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        pass
    clean = _B64_JUNK.sub(b"", data)
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    try:
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))
    except binascii.Error:
        return b""


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words anywhere in `text`.

    Whitespace between two encoded words is dropped (RFC 2047 6.2), and adjacent words in the same charset are
    joined before decoding so a multi-byte character split across words survives.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = b""
    pending_charset = ""
    pos = 0
    for m in _ENCODED_WORD.finditer(text):
        between = text[pos : m.start()]
        if between and not (pos and between.isspace()):
            if pending_charset:
                out.append(decode_bytes(pending, pending_charset))
                pending, pending_charset = b"", ""
            out.append(between)
        charset = m[1].lower()
        encoded = m[3].encode("utf-8", "replace")
        data = b64decode(encoded) if m[2] in "Bb" else binascii.a2b_qp(encoded, header=True)
        if charset == pending_charset:
            pending += data
        else:
            if pending_charset:
                out.append(decode_bytes(pending, pending_charset))
            pending, pending_charset = data, charset
        pos = m.end()
    if pending_charset:
        out.append(decode_bytes(pending, pending_charset))
    out.append(text[pos:])
    return "".join(out)


# One parameter: name, then "=" and a quoted string (possibly unterminated) or a token running to the next ";".
# Leniency: separators may be missing or repeated, and garbage between parameters is skipped by finditer.
_PARAM = re.compile(r'[\s;]*([^\s=;"]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|([^;]*))', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_CONTENT_TYPE = re.compile(r"\s*([^\s;/()]+)\s*/\s*([^\s;()]+)")
_TOKEN = re.compile(r"\s*([^\s;]+)")
DEFAULT_CONTENT_TYPE = ("text/plain", {"charset": "us-ascii"})


def parse_params(text: str) -> dict[str, str]:
    """Parameters of a Content-Type/Disposition tail: lower-case names, unquoted, RFC 2231 continuations and
    charsets decoded (an extended `name*` wins over a plain `name`)."""
    params: dict[str, str] = {}
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    for m in _PARAM.finditer(text):
        name = m[1].lower()
        value = _QUOTED_PAIR.sub(r"\1", m[2]) if m[2] is not None else m[3].strip()
        if "*" not in name:
            params.setdefault(name, value)
            continue
        base, _, section = name.partition("*")
        extended = section.endswith("*") or section == ""
        number = section.rstrip("*") or "0"
        if number.isdigit():
            sections.setdefault(base, []).append((int(number), extended, value))
    for base, parts in sections.items():
        parts.sort(key=lambda p: p[0])
        charset = None
        data = bytearray()
        for index, (_, extended, value) in enumerate(parts):
            if not extended:
                data += value.encode("utf-8")
                continue
            # RFC 2231 4: only the first section carries charset'language'.
            if index == 0 and value.count("'") >= 2:
                charset, _, value = value.split("'", 2)
            data += unquote_to_bytes(value)
        params[base] = decode_bytes(bytes(data), charset)
    return params


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """("type/subtype", params); absent or syntactically invalid gives text/plain; charset=us-ascii (RFC 2045
    5.2)."""
    if value is None:
        return DEFAULT_CONTENT_TYPE[0], dict(DEFAULT_CONTENT_TYPE[1])
    m = _CONTENT_TYPE.match(value)
    if m is None:
        return DEFAULT_CONTENT_TYPE[0], dict(DEFAULT_CONTENT_TYPE[1])
    return f"{m[1]}/{m[2]}".lower(), parse_params(value[m.end() :])


def parse_disposition(value: str) -> tuple[str | None, dict[str, str]]:
    """(lower-case disposition type or None, params) of a Content-Disposition value (RFC 2183)."""
    m = _TOKEN.match(value)
    if m is None:
        return None, {}
    return m[1].lower(), parse_params(value[m.end() :])


def first_token(value: str) -> str:
    """The first whitespace-delimited word, lower-cased (Content-Transfer-Encoding and the like)."""
    words = value.split(None, 1)
    return words[0].lower() if words else ""


# Address lists (RFC 5322 3.4). Tokens: whitespace, quoted strings, domain literals, specials, atoms (with dots,
# so "John Q. Public" stays three words); comments nest, so they are scanned by hand.
_ADDR_TOKEN = re.compile(
    r"""(?P<w>\s+)
    |"(?P<q>(?:[^"\\]|\\.)*)(?:"|\Z)
    |(?P<d>\[[^\]]*(?:\]|\Z))
    |(?P<s>[<>,:;@])
    |(?P<a>[^\s"\[<>,:;@()]+)
    |(?P<x>.)""",
    re.X | re.S,
)

Token = tuple[str, str]
# Parsed address list items: ("mailbox", name, local, domain) where domain is None when there is no "@",
# ("group", name, "", None) for a group start and ("end", "", "", None) for a group end.
AddressItem = tuple[str, str, str, str | None]


def _tokens(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos] == "(":
            depth = 0
            i = pos
            while i < n:
                c = text[i]
                if c == "\\":
                    i += 1
                elif c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            tokens.append(("c", _QUOTED_PAIR.sub(r"\1", text[pos + 1 : i])))
            pos = i + 1
            continue
        m = _ADDR_TOKEN.match(text, pos)
        assert m is not None  # the last alternative matches any character
        kind = m.lastgroup or "x"
        if kind == "q":
            tokens.append(("q", _QUOTED_PAIR.sub(r"\1", m["q"])))
        elif kind != "x":
            tokens.append((kind, m[kind]))
        pos = m.end()
    return tokens


def _phrase(tokens: list[Token]) -> str:
    """Display-name text as written minus quotes, whitespace runs collapsed."""
    return " ".join("".join(" " if k == "w" else t for k, t in tokens).split())


def _addr_spec(tokens: list[Token]) -> tuple[str, str | None]:
    parts = []
    for kind, text in tokens:
        if kind == "q":
            escaped = text.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'"{escaped}"')
        elif kind != "w":
            parts.append(text)
    at = max((i for i, p in enumerate(parts) if p == "@"), default=-1)
    if at < 0:
        return "".join(parts), None
    return "".join(parts[:at]), "".join(parts[at + 1 :])


def _split_bare(tokens: list[Token]) -> tuple[list[Token], list[Token]]:
    """Phrase and address of a mailbox without angle brackets; "John Doe john@example.com" (missing brackets)
    yields the phrase "John Doe" when only the last word contains "@"."""
    words: list[list[Token]] = [[]]
    for token in tokens:
        if token[0] == "w":
            words.append([])
        else:
            words[-1].append(token)
    words = [w for w in words if w]
    with_at = [i for i, w in enumerate(words) if ("s", "@") in w]
    if len(words) > 1 and with_at == [len(words) - 1] and words[-1][0] != ("s", "@"):
        phrase: list[Token] = []
        for w in words[:-1]:
            phrase += [*w, ("w", " ")]
        return phrase, words[-1]
    return [], tokens


def _mailbox(tokens: list[Token]) -> AddressItem | None:
    comments = [t for k, t in tokens if k == "c"]
    tokens = [t for t in tokens if t[0] != "c"]
    open_at = next((i for i, t in enumerate(tokens) if t == ("s", "<")), -1)
    if open_at >= 0:
        phrase = tokens[:open_at]
        rest = tokens[open_at + 1 :]
        close_at = next((i for i, t in enumerate(rest) if t == ("s", ">")), len(rest))
        addr = rest[:close_at]
        # Obsolete source route "<@a,@b:user@host>" (RFC 5322 4.4): keep what follows the last colon.
        colon = max((i for i, t in enumerate(addr) if t == ("s", ":")), default=-1)
        addr = addr[colon + 1 :]
    else:
        phrase, addr = _split_bare(tokens)
    name = _phrase(phrase) or " ".join(" ".join(comments).split())
    local, domain = _addr_spec(addr)
    if not local and domain is None and not name:
        return None
    return ("mailbox", name, local, domain)


def parse_address_list(text: str) -> list[AddressItem]:
    """Mailboxes and group markers of an address-list header value, best-effort (RFC 5322 3.4).

    "," and (outside a group) ";" separate mailboxes; a ":" outside angle brackets opens a group, ";" closes it
    and an unterminated group is closed at the end. Names are as written (quotes removed, not RFC 2047-decoded).
    """
    items: list[AddressItem] = []
    current: list[Token] = []
    in_angle = False
    in_group = False

    def flush() -> None:
        mailbox = _mailbox(current)
        if mailbox is not None:
            items.append(mailbox)
        current.clear()

    for token in _tokens(text):
        if token[0] == "s" and not in_angle:
            sep = token[1]
            if sep == "," or (sep == ";" and not in_group):
                flush()
                continue
            if sep == ":" and not in_group:
                items.append(("group", _phrase([t for t in current if t[0] != "c"]), "", None))
                current.clear()
                in_group = True
                continue
            if sep == ";":
                flush()
                items.append(("end", "", "", None))
                in_group = False
                continue
        if token[0] == "s":
            in_angle = token[1] == "<" or (in_angle and token[1] != ">")
        current.append(token)
    flush()
    if in_group:
        items.append(("end", "", "", None))
    return items


_MSG_ID = re.compile(r"<[^<>]*>")


def msg_ids(value: str) -> list[str]:
    """The "<...>" message ids in a References/In-Reply-To value, whitespace inside removed."""
    return ["".join(m.split()) for m in _MSG_ID.findall(value)]


def first_msg_id(value: str) -> str:
    """The first "<...>" id; a bare id without brackets is bracketed so ids compare equal when threading."""
    ids = msg_ids(value)
    if ids:
        return ids[0]
    words = value.split()
    return f"<{words[0]}>" if words else ""


def parse_date(value: str) -> datetime.datetime | None:
    """An aware datetime for an RFC 5322 date; "-0000" and zone-less dates are taken as UTC; garbage gives
    None."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed
