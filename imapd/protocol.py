"""The IMAP protocol core, without I/O (RFC 3501 section 9 grammar, RFC 7888 LITERAL+).

`Connection` is fed the bytes a client sends (`receive_data`) and hands out one event at a time
(`next_event`), in the manner of h11: a complete `Command`, a request to send a continuation for a
synchronising literal, a `Bad` input to answer, a raw `Line` (IDLE's DONE, AUTHENTICATE responses) when the
session asked for one, or `NEED_DATA`. It never buffers more than one command line (MAX_LINE) plus the literal
being read, and it checks each literal's announced size before any of it arrives.

The connection also holds the session state of RFC 3501 3 and knows which commands each state admits
(`COMMANDS_BY_STATE`); a command not admitted is answered BAD here, before any handler runs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

MAX_LINE = 64 * 1024  # one line of a command, without its literals


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_ANY = {"CAPABILITY", "NOOP", "LOGOUT", "ID"}
_AUTHENTICATED = _ANY | {
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "IDLE",
    "NAMESPACE",
    "ENABLE",
    "GETQUOTA",
    "GETQUOTAROOT",
    "SETQUOTA",
    "COMPRESS",
}
COMMANDS_BY_STATE: dict[State, frozenset[str]] = {
    State.NOT_AUTHENTICATED: frozenset(_ANY | {"STARTTLS", "AUTHENTICATE", "LOGIN"}),
    State.AUTHENTICATED: frozenset(_AUTHENTICATED),
    State.SELECTED: frozenset(
        _AUTHENTICATED
        | {
            "CHECK",
            "CLOSE",
            "UNSELECT",
            "EXPUNGE",
            "SEARCH",
            "FETCH",
            "STORE",
            "COPY",
            "MOVE",
            "UID FETCH",
            "UID SEARCH",
            "UID STORE",
            "UID COPY",
            "UID MOVE",
            "UID EXPUNGE",
            "SORT",
            "UID SORT",
            "THREAD",
            "UID THREAD",
        }
    ),
    State.LOGOUT: frozenset(),
}
ALL_COMMANDS = frozenset().union(*COMMANDS_BY_STATE.values())


class Atom(str):
    """An atom as the client wrote it (also NIL, flags, sequence sets and FETCH items with their sections)."""

    __slots__ = ()


# A quoted string or a literal is `bytes`; a parenthesised list is `list`.
Token = Atom | bytes | list


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    tag: str
    name: str  # upper case; "UID FETCH" and the like for UID commands
    args: list[Token]


@dataclass(frozen=True)
class Bad:
    """Input to refuse: send "<tag> BAD <text>" (tag "*" when none could be read); `fatal` closes the
    connection after an untagged BYE instead."""

    tag: str
    text: str
    fatal: bool = False


@dataclass(frozen=True)
class Continue:
    """The client waits for "+" before it sends a synchronising literal."""


@dataclass(frozen=True)
class Line:
    """A raw line, returned instead of a command after `expect_line()` (without its line break)."""

    data: bytes


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
Event = Command | Bad | Continue | Line | _NeedData

# RFC 3516 4.4: "~{n}" is a literal8, which may hold NUL (APPEND of binary content).
_LITERAL_AT_END = re.compile(rb"~?\{(\d{1,20})(\+?)\}$")
# RFC 3501 9: tag = 1*<any ASTRING-CHAR except "+">
_TAG = re.compile(rb"[^\x00-\x20\x7f(){%*\"\\+]+")
_ATOM_STOP = frozenset(b' ()"{\r\n')
_NAME = re.compile(rb"[A-Za-z]+")
_SECTION_ITEMS = frozenset({b"BODY", b"BODY.PEEK", b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE"})


@dataclass
class _Pending:
    """A command being received: its lines so far and the literals between them."""

    chunks: list[bytes] = field(default_factory=list)  # line, literal, line, literal, ..., line
    size: int = 0


class Connection:
    def __init__(self, max_literal: int) -> None:
        self.state = State.NOT_AUTHENTICATED
        self.max_literal = max_literal
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for a line break
        self._pending = _Pending()
        self._literal_left = 0  # bytes of the current literal still to come
        self._literal = bytearray()
        self._discarding_line = False  # skipping the rest of an over-long line
        self._expect_line = False

    # --- input -------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def expect_line(self) -> None:
        """The next complete line is returned as a `Line` rather than parsed as a command."""
        self._expect_line = True

    def discard_buffer(self) -> None:
        """Forget everything received but not yet consumed (after STARTTLS: RFC 3501 6.2.1 and the
        plaintext-injection attack it guards against)."""
        self._buffer.clear()
        self._scanned = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_event(self) -> Event:
        while True:
            if self._literal_left:
                if not self._buffer:
                    return NEED_DATA
                taken = self._buffer[: self._literal_left]
                del self._buffer[: len(taken)]
                self._literal += taken
                self._literal_left -= len(taken)
                if self._literal_left:
                    return NEED_DATA
                self._pending.chunks.append(bytes(self._literal))
                self._literal = bytearray()
                continue
            newline = self._buffer.find(b"\n", self._scanned)
            if newline < 0:
                if self._discarding_line:
                    self._buffer.clear()
                    self._scanned = 0
                    return NEED_DATA
                self._scanned = len(self._buffer)
                if len(self._buffer) > MAX_LINE:
                    tag = self._tag_of(bytes(self._buffer[:256]))
                    self._buffer.clear()
                    self._scanned = 0
                    self._discarding_line = True
                    self._pending = _Pending()
                    return Bad(tag, f"Command line too long (the limit is {MAX_LINE} bytes)")
                return NEED_DATA
            line = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            self._scanned = 0
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._discarding_line:
                self._discarding_line = False
                continue
            if len(line) > MAX_LINE:
                self._pending = _Pending()
                return Bad(self._tag_of(line[:256]), f"Command line too long (the limit is {MAX_LINE} bytes)")
            if self._expect_line and not self._pending.chunks:
                self._expect_line = False
                return Line(line)
            event = self._line(line)
            if event is not None:
                return event

    def _line(self, line: bytes) -> Event | None:
        pending = self._pending
        pending.chunks.append(line)
        pending.size += len(line)
        marker = _LITERAL_AT_END.search(line)
        if marker is None:
            self._pending = _Pending()
            return self._parse(pending.chunks)
        size = int(marker[1])
        synchronising = not marker[2]
        first = pending.chunks[0]
        if size > self.max_literal or pending.size + size > self.max_literal + MAX_LINE:
            self._pending = _Pending()
            tag = self._tag_of(first)
            text = f"[TOOBIG] Literal larger than the limit of {self.max_literal} bytes"
            # A synchronising literal is never sent once refused. A non-synchronising one is already on its
            # way; as Dovecot does (RFC 7888 4 allows it), say BYE and close rather than read it.
            return Bad(tag, text, fatal=not synchronising)
        self._literal_left = size
        if size == 0:
            pending.chunks.append(b"")
        return Continue() if synchronising else None

    @staticmethod
    def _tag_of(line: bytes) -> str:
        match = _TAG.match(line)
        if match is None or (len(line) > match.end() and line[match.end()] != 0x20):
            return "*"
        return match[0].decode("ascii")

    def _parse(self, chunks: list[bytes]) -> Event:
        tag = self._tag_of(chunks[0])
        try:
            command = parse_command(chunks)
        except ParseError as exc:
            return Bad(tag, str(exc))
        if command.name not in ALL_COMMANDS:
            return Bad(tag, f"Unknown command {command.name}")
        if command.name not in COMMANDS_BY_STATE[self.state]:
            return Bad(tag, f"{command.name} is not allowed in the {self.state.value} state")
        return command


# --- the tokenizer ---------------------------------------------------------------------------------------------


class _Reader:
    """Walks a command's chunks: text of a line, then at a literal marker the literal's bytes, and so on."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.index = 0
        self.text = chunks[0]
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text) and self.index + 1 >= len(self.chunks)

    def peek(self) -> int | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def spaces(self) -> int:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] == 0x20:
            self.pos += 1
        return self.pos - start

    def token(self, depth: int = 0) -> Token:
        ch = self.peek()
        if ch is None:
            raise ParseError("Missing argument")
        if ch == 0x28:  # (
            self.pos += 1
            if depth > 8:
                raise ParseError("Lists nested too deeply")
            items: list[Token] = []
            while True:
                spaced = self.spaces() > 0
                ch = self.peek()
                if ch == 0x29:  # )
                    self.pos += 1
                    return items
                if ch is None:
                    raise ParseError("Unterminated list")
                if items and not spaced:
                    raise ParseError("Missing space in list")
                items.append(self.token(depth + 1))
        if ch == 0x22:  # "
            return self._quoted()
        if ch == 0x7B or (ch == 0x7E and self.text[self.pos + 1 : self.pos + 2] == b"{"):  # { or ~{
            return self._literal()
        if ch == 0x29:
            raise ParseError("Unexpected )")
        return self._atom()

    def _quoted(self) -> bytes:
        out = bytearray()
        pos = self.pos + 1
        text = self.text
        while pos < len(text):
            ch = text[pos]
            if ch == 0x22:
                self.pos = pos + 1
                return bytes(out)
            if ch == 0x5C:  # backslash: only \\ and \" are escapes (RFC 3501 9, quoted-specials)
                if pos + 1 < len(text) and text[pos + 1] in b'\\"':
                    out.append(text[pos + 1])
                    pos += 2
                    continue
                raise ParseError("Invalid escape in quoted string")
            if ch == 0 or ch == 0x0D:
                raise ParseError("Invalid character in quoted string")
            out.append(ch)
            pos += 1
        raise ParseError("Unterminated quoted string")

    def _literal(self) -> bytes:
        match = _LITERAL_AT_END.match(self.text, self.pos)
        if match is None or match.end() != len(self.text) or self.index + 2 >= len(self.chunks):
            raise ParseError("Literal must end the line")
        data = self.chunks[self.index + 1]
        self.index += 2
        self.text = self.chunks[self.index]
        self.pos = 0
        return data

    def _atom(self) -> Atom:
        start = self.pos
        text = self.text
        pos = start
        while pos < len(text):
            ch = text[pos]
            if ch == 0x5B and text[start:pos].upper() in _SECTION_ITEMS:
                # [ after a FETCH item opens a section, which may hold spaces and a list (RFC 3501 6.4.5).
                # Elsewhere "[" is an ordinary ATOM-CHAR, as in a mailbox name (RFC 3501 9).
                close = text.find(b"]", pos)
                if close < 0:
                    raise ParseError("Unterminated [")
                pos = close + 1
                continue
            if ch in _ATOM_STOP or ch < 0x20 or ch == 0x7F:
                break
            pos += 1
        if pos == start:
            raise ParseError(f"Unexpected character {chr(text[pos])!r}")
        self.pos = pos
        try:
            return Atom(text[start:pos].decode("ascii"))
        except UnicodeDecodeError:
            raise ParseError("8-bit characters in an atom") from None


def parse_command(chunks: list[bytes]) -> Command:
    """Parse one command: `chunks` are its lines (without line breaks) with its literals between them."""
    reader = _Reader(chunks)
    tag_match = _TAG.match(reader.text)
    if tag_match is None:
        raise ParseError("Missing or invalid tag")
    reader.pos = tag_match.end()
    if not reader.spaces():
        raise ParseError("Missing command")
    name_match = _NAME.match(reader.text, reader.pos)
    if name_match is None:
        raise ParseError("Missing command")
    reader.pos = name_match.end()
    name = name_match[0].decode("ascii").upper()
    if reader.peek() not in (None, 0x20):
        raise ParseError("Invalid command name")
    args: list[Token] = []
    while not reader.at_end():
        if not reader.spaces():
            raise ParseError("Missing space between arguments")
        if reader.peek() is None and reader.at_end():
            break  # trailing spaces are tolerated
        args.append(reader.token())
    if name == "UID":
        first = args.pop(0) if args else None
        if not isinstance(first, Atom):
            raise ParseError("UID needs a command")
        name = "UID " + first.upper()
    return Command(tag_match[0].decode("ascii"), name, args)


def astring(token: Token) -> str:
    """An astring argument (atom, quoted string or literal) as text."""
    if isinstance(token, list):
        raise ParseError("Expected a string, not a list")
    if isinstance(token, bytes):
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("String is not UTF-8") from None
    return str(token)
