"""SEARCH arguments (RFC 3501 6.4.4, RFC 9051 6.4.4) parsed into a tree of keys, without Django or I/O.

`parse` takes the tokens of a SEARCH/UID SEARCH command (as `imapd.protocol` produced them) and returns a
`Search`: the RETURN options of ESEARCH (RFC 4731), the charset and one `Key`. Nesting (NOT, OR and
parenthesised lists) is limited to MAX_DEPTH levels and the number of keys to MAX_KEYS; beyond either the
command is a ParseError (answered BAD), so no input reaches Python's recursion limit or builds an
unbounded query. The translation of the tree to SQL is `imapd.search_sql`.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from imapd import sequence
from imapd.protocol import Atom, ParseError, Token, astring

MAX_DEPTH = 32
MAX_KEYS = 2000
CHARSETS = ("UTF-8", "US-ASCII")


class BadCharset(ParseError):
    """A charset this server does not search in: NO [BADCHARSET] (RFC 3501 6.4.4)."""


# --- the tree ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class All:
    pass


@dataclass(frozen=True)
class And:
    keys: tuple[Key, ...]


@dataclass(frozen=True)
class Or:
    left: Key
    right: Key


@dataclass(frozen=True)
class Not:
    key: Key


@dataclass(frozen=True)
class Flag:
    """A system flag set (on) or not: name is one of seen, answered, flagged, deleted, draft."""

    name: str
    on: bool


@dataclass(frozen=True)
class Keyword:
    """A flag as KEYWORD names it: a keyword, or a system flag written with its backslash."""

    flag: str


@dataclass(frozen=True)
class Recent:
    pass


@dataclass(frozen=True)
class Header:
    """HEADER field value, and FROM/TO/CC/BCC/SUBJECT: the field's content contains value (case-insensitive);
    an empty value matches every message having the field (RFC 3501 6.4.4)."""

    field: str  # lower case
    value: str


@dataclass(frozen=True)
class Body:
    value: str


@dataclass(frozen=True)
class Text:
    """Header or body contains value (RFC 3501 6.4.4)."""

    value: str


@dataclass(frozen=True)
class Size:
    larger: bool  # LARGER n is size > n, SMALLER n is size < n
    octets: int


@dataclass(frozen=True)
class Date:
    """BEFORE/ON/SINCE (sent False: the internal date's day) or SENTBEFORE/SENTON/SENTSINCE (sent True: the
    Date: header's day in its own zone), both disregarding time (RFC 3501 6.4.4)."""

    sent: bool
    relation: str  # "before", "on" or "since"
    day: datetime.date


@dataclass(frozen=True)
class Messages:
    """A sequence set of message numbers (by_uid False) or of UIDs (the UID key)."""

    ranges: tuple[tuple[int, int], ...]  # as written; sequence.STAR for "*"
    by_uid: bool


@dataclass(frozen=True)
class Saved:
    """ "$": the result saved by an earlier SEARCH RETURN (SAVE) (RFC 5182 2.1)."""


@dataclass(frozen=True)
class ModSeq:
    """MODSEQ n (RFC 7162 3.1.5): the message's mod-sequence is at least n."""

    modseq: int


Key = All | And | Or | Not | Flag | Keyword | Recent | Header | Body | Text | Size | Date | Messages | Saved | ModSeq


@dataclass(frozen=True)
class Search:
    key: Key
    charset: str = "US-ASCII"
    returns: tuple[str, ...] | None = None  # RETURN (...) of ESEARCH, upper case; None without RETURN


# --- parsing -------------------------------------------------------------------------------------------------

_FLAG_KEYS: dict[str, Key] = {
    "ANSWERED": Flag("answered", True),
    "DELETED": Flag("deleted", True),
    "DRAFT": Flag("draft", True),
    "FLAGGED": Flag("flagged", True),
    "SEEN": Flag("seen", True),
    "UNANSWERED": Flag("answered", False),
    "UNDELETED": Flag("deleted", False),
    "UNDRAFT": Flag("draft", False),
    "UNFLAGGED": Flag("flagged", False),
    "UNSEEN": Flag("seen", False),
    "ALL": All(),
    "RECENT": Recent(),
    "NEW": And((Recent(), Flag("seen", False))),
    "OLD": Not(Recent()),
}
_ADDRESS_KEYS = {"BCC", "CC", "FROM", "TO", "SUBJECT"}
_DATE_KEYS = {
    "BEFORE": (False, "before"),
    "ON": (False, "on"),
    "SINCE": (False, "since"),
    "SENTBEFORE": (True, "before"),
    "SENTON": (True, "on"),
    "SENTSINCE": (True, "since"),
}
RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})\Z")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 3.6.8 ftext


def parse_date(token: Token) -> datetime.date:
    """RFC 3501 9 date: 1-Feb-2024 (also quoted)."""
    text = astring(token)
    match = _DATE.match(text)
    if match is None or match[2].lower() not in _MONTHS:
        raise ParseError(f"Invalid date {text!r} (expected e.g. 1-Feb-2024)")
    try:
        return datetime.date(int(match[3]), _MONTHS.index(match[2].lower()) + 1, int(match[1]))
    except ValueError:
        raise ParseError(f"Invalid date {text!r}") from None


def _number(token: Token, what: str) -> int:
    if not isinstance(token, Atom) or not token.isdigit() or len(token) > 20:
        raise ParseError(f"{what} needs a number")
    return int(token)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.keys = 0

    def take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise ParseError("Missing search argument")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def sequence_of(self, depth: int) -> Key:
        """Keys up to the end of the current token list, ANDed."""
        keys = []
        while self.pos < len(self.tokens):
            keys.append(self.key(depth))
        if not keys:
            raise ParseError("Empty search key list")
        return keys[0] if len(keys) == 1 else And(tuple(keys))

    def key(self, depth: int) -> Key:
        if depth > MAX_DEPTH:
            raise ParseError(f"Search keys nested too deeply (the limit is {MAX_DEPTH})")
        self.keys += 1
        if self.keys > MAX_KEYS:
            raise ParseError(f"Too many search keys (the limit is {MAX_KEYS})")
        token = self.take()
        if isinstance(token, list):
            saved = self.tokens, self.pos
            self.tokens, self.pos = token, 0
            key = self.sequence_of(depth + 1)
            self.tokens, self.pos = saved
            return key
        if not isinstance(token, Atom):
            raise ParseError("Expected a search key")
        name = token.upper()
        if name in _FLAG_KEYS:
            return _FLAG_KEYS[name]
        if name in ("KEYWORD", "UNKEYWORD"):
            flag = astring(self.take())
            return Keyword(flag) if name == "KEYWORD" else Not(Keyword(flag))
        if name in _ADDRESS_KEYS:
            return Header(name.lower(), astring(self.take()))
        if name == "HEADER":
            field = astring(self.take())
            if not _FIELD_NAME.match(field):
                raise ParseError(f"Invalid header field name {field!r}")
            return Header(field.lower(), astring(self.take()))
        if name == "BODY":
            return Body(astring(self.take()))
        if name == "TEXT":
            return Text(astring(self.take()))
        if name in ("LARGER", "SMALLER"):
            return Size(name == "LARGER", _number(self.take(), name))
        if name in _DATE_KEYS:
            sent, relation = _DATE_KEYS[name]
            return Date(sent, relation, parse_date(self.take()))
        if name == "NOT":
            return Not(self.key(depth + 1))
        if name == "OR":
            left = self.key(depth + 1)
            return Or(left, self.key(depth + 1))
        if name == "UID":
            token = self.take()
            if token == "$":
                return Saved()
            return Messages(tuple(sequence.parse(token)), by_uid=True)
        if name == "MODSEQ":
            # RFC 7162 3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer
            value = self.take()
            if isinstance(value, bytes | list) or not value.isdigit():
                entry_type = self.take()
                if not isinstance(entry_type, Atom) or entry_type.lower() not in ("priv", "shared", "all"):
                    raise ParseError("Invalid MODSEQ entry type")
                value = self.take()
            return ModSeq(_number(value, "MODSEQ"))
        if token == "$":
            return Saved()
        if sequence.is_sequence_set(token):
            return Messages(tuple(sequence.parse(token)), by_uid=False)
        raise ParseError(f"Unknown search key {token}")


def uses_modseq(key: Key) -> bool:
    """Whether a MODSEQ key occurs anywhere in the tree (which makes SEARCH report a mod-sequence)."""
    stack = [key]
    while stack:
        node = stack.pop()
        if isinstance(node, ModSeq):
            return True
        if isinstance(node, And):
            stack.extend(node.keys)
        elif isinstance(node, Or):
            stack += [node.left, node.right]
        elif isinstance(node, Not):
            stack.append(node.key)
    return False


def _is_atom(token: Token, name: str) -> bool:
    return isinstance(token, Atom) and token.upper() == name


def parse(tokens: list[Token]) -> Search:
    """A SEARCH command's arguments: [RETURN (options)] [CHARSET name] keys."""
    pos = 0
    returns: tuple[str, ...] | None = None
    if len(tokens) > pos + 1 and _is_atom(tokens[pos], "RETURN"):
        options = tokens[pos + 1]
        if not isinstance(options, list) or any(not isinstance(o, Atom) for o in options):
            raise ParseError("RETURN needs a list of options")
        names = tuple(str(o).upper() for o in options)
        unknown = [n for n in names if n not in RETURN_OPTIONS]
        if unknown:
            raise ParseError(f"Unknown RETURN option {unknown[0]}")
        # RFC 4731 3.1: RETURN () means RETURN (ALL).
        returns = names or ("ALL",)
        pos += 2
    charset = "US-ASCII"
    if len(tokens) > pos and _is_atom(tokens[pos], "CHARSET"):
        if len(tokens) < pos + 2:
            raise ParseError("CHARSET needs a name")
        charset = astring(tokens[pos + 1]).upper()
        if charset not in CHARSETS:
            raise BadCharset(charset)
        pos += 2
    if pos >= len(tokens):
        raise ParseError("SEARCH needs at least one key")
    return Search(_Parser(tokens[pos:]).sequence_of(0), charset, returns)
