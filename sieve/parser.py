"""Sieve grammar (RFC 5228 8): text in, a tree of commands out; every node keeps its line and column.

The parser knows only the grammar; which commands exist and what arguments they take is `validate.py`'s job.
Limits are checked here so that a hostile script costs little: its size before anything is read, and the
nesting of blocks and tests as it is descended (10,000 nested ifs are refused at depth MAX_NESTING, not by
Python's recursion limit).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from sieve.errors import SieveError

MAX_SCRIPT_BYTES = 256 * 1024
# Blocks and tests inside one another (Pigeonhole's default limit on block nesting is 32 as well).
MAX_NESTING = 32

_QUANTIFIERS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_MAX_NUMBER = (1 << 63) - 1

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
    |(?P<hash>\#[^\n]*)
    |(?P<bracket>/\*)
    |(?P<text>text:[ \t]*(?:\#[^\n]*)?\r?\n)
    |(?P<quoted>")
    |(?P<number>[0-9]+)(?P<quant>[KkMmGg]?)(?![A-Za-z0-9_])
    |(?P<tag>:[A-Za-z_][A-Za-z0-9_]*)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>[\[\](),{};])""",
    re.X,
)
_QUOTED_BODY = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
# RFC 5228 2.4.2: the multi-line string ends at a line holding only "."; lines starting with ".." lose a dot.
_TEXT_END = re.compile(r"^\.\r?\n|^\.\Z", re.M)


@dataclass
class Token:
    kind: str  # "ident", "tag", "number", "string", or the punctuation character itself
    value: str | int
    pos: int


@dataclass
class Strings:
    """A string or a string list as written: a single string is a list of one with `is_list` False."""

    values: list[str]
    is_list: bool
    line: int
    column: int


@dataclass
class Number:
    value: int
    line: int
    column: int


@dataclass
class Tag:
    name: str  # lower case, without the colon
    line: int
    column: int


Argument = Strings | Number | Tag


@dataclass(frozen=True)
class Comparison:
    """How a test compares its values with its keys (RFC 5228 2.7), read from its tags once."""

    comparator: str = "i;ascii-casemap"  # lower case (RFC 5228 2.7.3: the default)
    match_type: str = "is"  # is, contains, matches (RFC 5228 2.7.1), value, count (RFC 5231)
    relation: Strings | None = None  # the relation of :value or :count, which may hold variables
    address_part: str = "all"  # all, localpart, domain (RFC 5228 2.7.4), user, detail (RFC 5233)


@dataclass
class Test:
    name: str  # lower case
    arguments: list[Argument]
    tests: list[Test]
    line: int
    column: int
    # Filled in by the validator: tagged arguments by name (None for a tag without a value), positional ones, and
    # the comparison its tags ask for.
    tagged: dict[str, Argument | None] = field(default_factory=dict)
    positional: list[Argument] = field(default_factory=list)
    comparison: Comparison = Comparison()


@dataclass
class Command:
    name: str  # lower case
    arguments: list[Argument]
    tests: list[Test]
    block: list[Command] | None
    line: int
    column: int
    tagged: dict[str, Argument | None] = field(default_factory=dict)
    positional: list[Argument] = field(default_factory=list)


class _Position:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def __call__(self, pos: int) -> tuple[int, int]:
        line = bisect_right(self.starts, pos)
        return line, pos - self.starts[line - 1] + 1


def tokenize(text: str) -> tuple[list[Token], _Position]:
    position = _Position(text)
    tokens: list[Token] = []
    pos = 0
    end = len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SieveError(f"unexpected character {text[pos]!r}", *position(pos))
        kind = m.lastgroup
        if kind == "quant":
            kind = "number"
        if kind in ("ws", "hash"):
            pos = m.end()
        elif kind == "bracket":
            comment_end = text.find("*/", m.end())
            if comment_end < 0:
                raise SieveError("unterminated /* comment", *position(pos))
            pos = comment_end + 2
        elif kind == "quoted":
            body = _QUOTED_BODY.match(text, m.end())
            if body is None:
                raise SieveError("unterminated quoted string", *position(pos))
            # RFC 5228 2.4.2: "\\" and '\"' stand for themselves; any other escape is the character alone.
            tokens.append(Token("string", _ESCAPE.sub(r"\1", body[0][:-1]), pos))
            pos = body.end()
        elif kind == "text":
            close = _TEXT_END.search(text, m.end())
            if close is None:
                raise SieveError("unterminated multi-line string (no line holding only '.')", *position(pos))
            lines = text[m.end() : close.start()].splitlines(keepends=True)
            value = "".join(line[1:] if line.startswith("..") else line for line in lines)
            tokens.append(Token("string", value.replace("\r\n", "\n").replace("\n", "\r\n"), pos))
            pos = close.end()
        elif kind == "number":
            number = int(m["number"]) * _QUANTIFIERS[m["quant"].lower()]
            if number > _MAX_NUMBER:
                raise SieveError("number too large", *position(pos))
            tokens.append(Token("number", number, pos))
            pos = m.end()
        elif kind == "tag":
            tokens.append(Token("tag", m[0][1:].lower(), pos))
            pos = m.end()
        elif kind == "ident":
            tokens.append(Token("ident", m[0].lower(), pos))
            pos = m.end()
        else:
            tokens.append(Token(m[0], m[0], pos))
            pos = m.end()
    return tokens, position


class _Parser:
    def __init__(self, tokens: list[Token], position: _Position, text_length: int) -> None:
        self.tokens = tokens
        self.i = 0
        self.position = position
        self.end = text_length

    def error(self, message: str, token: Token | None = None) -> SieveError:
        pos = token.pos if token is not None else self.end
        return SieveError(message, *self.position(pos))

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token is None or token.kind != kind:
            found = "end of script" if token is None else repr(token.value)
            raise self.error(f"expected {what}, found {found}", token)
        self.i += 1
        return token

    def commands(self, depth: int, closing: bool) -> list[Command]:
        commands: list[Command] = []
        while True:
            token = self.peek()
            if token is None:
                if closing:
                    raise self.error("missing '}' at end of script")
                return commands
            if closing and token.kind == "}":
                self.i += 1
                return commands
            commands.append(self.command(depth))

    def command(self, depth: int) -> Command:
        token = self.take("ident", "a command")
        arguments, tests = self.arguments(depth)
        line, column = self.position(token.pos)
        after = self.peek()
        block = None
        if after is not None and after.kind == "{":
            if depth + 1 > MAX_NESTING:
                raise self.error(f"blocks nested deeper than {MAX_NESTING}", after)
            self.i += 1
            block = self.commands(depth + 1, closing=True)
        else:
            self.take(";", "';' or '{'")
        return Command(str(token.value), arguments, tests, block, line, column)

    def arguments(self, depth: int) -> tuple[list[Argument], list[Test]]:
        arguments: list[Argument] = []
        while True:
            token = self.peek()
            if token is None:
                return arguments, []
            line, column = self.position(token.pos)
            if token.kind == "string":
                self.i += 1
                arguments.append(Strings([str(token.value)], False, line, column))
            elif token.kind == "[":
                self.i += 1
                values = [str(self.take("string", "a string").value)]
                while self.peek() is not None and self.peek().kind == ",":  # type: ignore[union-attr]
                    self.i += 1
                    values.append(str(self.take("string", "a string").value))
                self.take("]", "',' or ']'")
                arguments.append(Strings(values, True, line, column))
            elif token.kind == "number":
                self.i += 1
                arguments.append(Number(int(token.value), line, column))
            elif token.kind == "tag":
                self.i += 1
                arguments.append(Tag(str(token.value), line, column))
            elif token.kind == "ident":
                return arguments, [self.test(depth + 1)]
            elif token.kind == "(":
                return arguments, self.test_list(depth + 1)
            else:
                return arguments, []

    def test_list(self, depth: int) -> list[Test]:
        self.take("(", "'('")
        tests = [self.test(depth)]
        while True:
            token = self.take_one_of((",", ")"), "',' or ')'")
            if token.kind == ")":
                return tests
            tests.append(self.test(depth))

    def take_one_of(self, kinds: tuple[str, ...], what: str) -> Token:
        token = self.peek()
        if token is None or token.kind not in kinds:
            found = "end of script" if token is None else repr(token.value)
            raise self.error(f"expected {what}, found {found}", token)
        self.i += 1
        return token

    def test(self, depth: int) -> Test:
        token = self.take("ident", "a test")
        if depth > MAX_NESTING:
            raise self.error(f"tests nested deeper than {MAX_NESTING}", token)
        arguments, tests = self.arguments(depth)
        line, column = self.position(token.pos)
        return Test(str(token.value), arguments, tests, line, column)


def parse(source: str | bytes) -> list[Command]:
    """The commands of a script; SieveError (with line and column) if it does not follow the grammar."""
    if isinstance(source, bytes):
        if len(source) > MAX_SCRIPT_BYTES:
            raise SieveError(f"script larger than {MAX_SCRIPT_BYTES} bytes")
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SieveError(f"script is not UTF-8 (byte {exc.start})") from None
    elif len(source.encode("utf-8")) > MAX_SCRIPT_BYTES:
        raise SieveError(f"script larger than {MAX_SCRIPT_BYTES} bytes")
    tokens, position = tokenize(source)
    return _Parser(tokens, position, len(source)).commands(0, closing=False)
