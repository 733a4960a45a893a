"""The ManageSieve protocol core (RFC 5804) without any I/O.

Bytes go in with `receive_data`; `next_event` parses one command at a time (strings quoted or as literals,
`{n+}` and `{n}` alike, RFC 5804 4) and either answers it on its own (CAPABILITY, NOOP, CHECKSCRIPT, LOGOUT,
syntax errors) or returns an event for the shell: `Authenticate`, `StartTLS`, `Operation` (the commands that
read or write the account's scripts) and `Close`. While an event is outstanding nothing else is parsed; the
shell answers with the matching method, so pipelined commands are answered in order. Replies accumulate until
`data_to_send`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from sieve.errors import SieveError
from sieve.interpreter import MAX_REDIRECTS
from sieve.parser import MAX_SCRIPT_BYTES
from sieve.validate import CAPABILITIES, compile_script

# A command's own bytes (literals not counted) and a literal's size, at most.
MAX_LINE = 8192
MAX_LITERAL = MAX_SCRIPT_BYTES
MAX_AUTH_FAILURES = 3

_LITERAL = re.compile(rb"\{([0-9]{1,10})(\+?)\}\r?\n")
_NUMBER = re.compile(rb"[0-9]{1,10}")
_ATOM = re.compile(rb"[A-Za-z]+")
_QUOTED = re.compile(rb'"((?:[^"\\\r\n]|\\["\\])*)"')


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


@dataclass(frozen=True)
class Authenticate:
    """Check these credentials; answer with login_succeeded, login_failed or temporary_failure."""

    username: str
    password: str


@dataclass(frozen=True)
class StartTLS:
    """Send what is queued, then negotiate TLS and call tls_started."""


@dataclass(frozen=True)
class Operation:
    """A command on the account's scripts; answer with `respond` (and `send_script` for GETSCRIPT).

    name is one of LISTSCRIPTS, PUTSCRIPT, GETSCRIPT, SETACTIVE, DELETESCRIPT, RENAMESCRIPT, HAVESPACE;
    args are the command's strings (script names, content) and numbers in order.
    """

    name: str
    args: tuple[str | int, ...]


@dataclass(frozen=True)
class Close:
    """Send what is queued, then close the connection."""


Event = Authenticate | StartTLS | Operation | Close

# name -> argument kinds ("s" string, "n" number); commands answered by the shell from the store.
_OPERATIONS = {
    "LISTSCRIPTS": "",
    "PUTSCRIPT": "ss",
    "GETSCRIPT": "s",
    "SETACTIVE": "s",
    "DELETESCRIPT": "s",
    "RENAMESCRIPT": "ss",
    "HAVESPACE": "sn",
}
# RFC 5804 2: every command this core knows; others are answered NO.
COMMAND_NAMES = frozenset(
    {"AUTHENTICATE", "STARTTLS", "LOGOUT", "CAPABILITY", "NOOP", "UNAUTHENTICATE", "CHECKSCRIPT", *_OPERATIONS}
)


class _Syntax(Exception):
    def __init__(self, message: str, consumed: int, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.consumed = consumed
        self.code = code


class _More(Exception):
    def __init__(self, needed: int) -> None:
        self.needed = needed


def quoted_or_literal(text: str) -> bytes:
    """A string as a reply carries it (RFC 5804 4): quoted when it can be, else a literal."""
    data = text.encode("utf-8")
    if b"\r" in data or b"\n" in data or len(data) > 1024:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _line_end(buf: bytes | bytearray, pos: int) -> int | None:
    """Position after the CRLF (or bare LF) ending the command at pos, None when this is not the end."""
    if buf[pos : pos + 2] == b"\r\n":
        return pos + 2
    if buf[pos : pos + 1] == b"\n":
        return pos + 1
    return None


def parse_command(buf: bytes | bytearray, *, named: bool = True) -> tuple[list[str | int | bytes], int]:
    """One command from the start of `buf`: (tokens, bytes consumed). The first token is the command name
    (str, upper case) when `named` (a SASL response line is a string alone); strings are bytes, numbers int.
    Raises _More(n) when at least n bytes are needed, and _Syntax(message, bytes to drop) for a malformed
    command."""
    tokens: list[str | int | bytes] = []
    pos = 0
    size = len(buf)
    own = 0  # bytes of the command outside literals
    while True:
        while pos < size and buf[pos] == 0x20:
            pos += 1
        if pos >= size:
            raise _More(size + 1) if own < MAX_LINE else _too_long(buf, pos)
        end = _line_end(buf, pos)
        if end is not None:
            if not tokens:
                raise _Syntax("empty command", end)
            return tokens, end
        char = buf[pos]
        if char == 0x0D and pos + 1 == size:
            raise _More(size + 1)  # the LF of the CRLF is still to come
        start = pos
        if not tokens and named:
            m = _ATOM.match(buf, pos)
            if m is None:
                raise _Syntax("a command name was expected", _skip_line(buf, pos))
            tokens.append(m[0].decode("ascii").upper())
            pos = m.end()
        elif char == 0x22:  # '"'
            m = _QUOTED.match(buf, pos)
            if m is None:
                if buf.find(b"\n", pos) < 0 and size - pos < MAX_LINE:
                    raise _More(size + 1)
                raise _Syntax("malformed quoted string", _skip_line(buf, pos))
            tokens.append(re.sub(rb'\\(["\\])', rb"\1", m[1]))
            pos = m.end()
        elif char == 0x7B:  # '{'
            m = _LITERAL.match(buf, pos)
            if m is None:
                if buf.find(b"\n", pos) < 0 and size - pos < 20:
                    raise _More(size + 1)
                raise _Syntax("malformed literal", _skip_line(buf, pos))
            length = int(m[1])
            if length > MAX_LITERAL:
                raise _Syntax(f"a string is limited to {MAX_LITERAL} octets", -(m.end() + length), "QUOTA/MAXSIZE")
            if size < m.end() + length:
                raise _More(m.end() + length + 1)
            tokens.append(bytes(buf[m.end() : m.end() + length]))
            pos = m.end() + length
            own += m.end() - start
            continue
        else:
            m = _NUMBER.match(buf, pos)
            if m is None:
                raise _Syntax("unexpected characters", _skip_line(buf, pos))
            tokens.append(int(m[0]))
            pos = m.end()
        own += pos - start
        if pos < size and buf[pos] not in b" \r\n":
            raise _Syntax("arguments must be separated by spaces", _skip_line(buf, pos))


def _skip_line(buf: bytes | bytearray, pos: int) -> int:
    newline = buf.find(b"\n", pos)
    return newline + 1 if newline >= 0 else len(buf)


def _too_long(buf: bytes | bytearray, pos: int) -> _Syntax:
    return _Syntax("command line too long", _skip_line(buf, pos))


class ManageSieveConnection:
    def __init__(
        self,
        *,
        tls: bool,
        plaintext_allowed: bool,
        implementation: str = "Mailsite",
        hostname: str = "localhost",
        on_command: Callable[[str], None] | None = None,
    ) -> None:
        self.state = State.NOT_AUTHENTICATED
        self._on_command = on_command  # told the name of each known command it is given (the shell counts them)
        self.tls = tls
        self.username: str | None = None
        self._plaintext_allowed = plaintext_allowed
        self._implementation = implementation
        self._hostname = hostname
        self._inbuf = bytearray()
        self._outbuf: list[bytes] = []
        self._need = 0  # parse again only once the buffer holds this many bytes
        self._skip = 0  # bytes of an oversized literal still to drop
        self._skip_then_line = False
        self._sasl_pending = False
        self._awaiting: type | None = None
        self._failures = 0
        self._capabilities()
        self._ok()

    # Output

    def data_to_send(self) -> bytes:
        data = b"".join(self._outbuf)
        self._outbuf.clear()
        return data

    def _line(self, data: bytes) -> None:
        self._outbuf.append(data + b"\r\n")

    def _response(self, kind: str, text: str = "", code: str = "") -> None:
        line = kind.encode("ascii")
        if code:
            line += b" (" + code.encode("utf-8") + b")"
        if text:
            line += b" " + quoted_or_literal(text)
        self._line(line)

    def _ok(self, text: str = "", code: str = "") -> None:
        self._response("OK", text, code)

    def _no(self, text: str, code: str = "") -> None:
        self._response("NO", text, code)

    def _capabilities(self) -> None:
        # RFC 5804 1.7; SASL mechanisms are offered only where a password may be sent.
        sasl = "PLAIN" if self.tls or self._plaintext_allowed else ""
        self._line(b'"IMPLEMENTATION" ' + quoted_or_literal(self._implementation))
        self._line(b'"SASL" ' + quoted_or_literal(sasl))
        self._line(b'"SIEVE" ' + quoted_or_literal(" ".join(CAPABILITIES)))
        if not self.tls:
            self._line(b'"STARTTLS"')
        self._line(b'"MAXREDIRECTS" ' + quoted_or_literal(str(MAX_REDIRECTS)))
        self._line(b'"UNAUTHENTICATE"')
        self._line(b'"VERSION" "1.0"')

    # Input

    def receive_data(self, data: bytes) -> None:
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        self._inbuf += data

    def timed_out(self) -> None:
        self._response("BYE", "idle for too long")
        self.state = State.CLOSED

    def next_event(self) -> Event | _NeedData:
        while True:
            if self.state is State.CLOSED:
                return Close()
            if self._awaiting is not None:
                raise RuntimeError(f"{self._awaiting.__name__} is still being answered")
            if self._skip:
                return NEED_DATA
            if self._skip_then_line:
                newline = self._inbuf.find(b"\n")
                if newline < 0:
                    self._inbuf.clear()
                    return NEED_DATA
                del self._inbuf[: newline + 1]
                self._skip_then_line = False
                continue
            if len(self._inbuf) < self._need or not self._inbuf:
                return NEED_DATA
            try:
                tokens, consumed = parse_command(self._inbuf, named=not self._sasl_pending)
            except _More as more:
                self._need = more.needed
                return NEED_DATA
            except _Syntax as error:
                self._need = 0
                self._drop(error.consumed)
                if self._sasl_pending:
                    self._sasl_pending = False
                    self._no("malformed SASL response")
                else:
                    self._no(error.message, error.code)
                continue
            self._need = 0
            del self._inbuf[:consumed]
            event = self._dispatch(tokens)
            if event is not None:
                self._awaiting = type(event)
                return event

    def _drop(self, consumed: int) -> None:
        if consumed >= 0:
            line_ended = self._inbuf[consumed - 1 : consumed] == b"\n"
            del self._inbuf[:consumed]
            # A line too long to hold: what is still to come of it is dropped too.
            self._skip_then_line = not line_ended
            return
        # An oversized literal: drop its bytes as they come, then the rest of its command line.
        total = -consumed
        dropped = min(total, len(self._inbuf))
        del self._inbuf[:dropped]
        self._skip = total - dropped
        self._skip_then_line = True

    def _dispatch(self, tokens: list[str | int | bytes]) -> Event | None:
        if self._sasl_pending:
            self._sasl_pending = False
            return self._sasl_response(tokens)
        name = tokens[0]
        assert isinstance(name, str)
        args = tokens[1:]
        if self._on_command is not None and name in COMMAND_NAMES:
            self._on_command(name)
        if name == "LOGOUT":
            self._ok("Logout")
            self.state = State.CLOSED
            return Close()
        if name == "CAPABILITY":
            self._capabilities()
            self._ok()
            return None
        if name == "NOOP":
            # RFC 5804 2.11: a string argument is echoed in the TAG response code.
            if args and isinstance(args[0], bytes):
                self._ok("Done", "TAG " + quoted_or_literal(args[0].decode("utf-8", "replace")).decode())
            else:
                self._ok("Done")
            return None
        if name == "STARTTLS":
            if self.tls:
                self._no("TLS is already active")
                return None
            if self.state is not State.NOT_AUTHENTICATED:
                self._no("STARTTLS only before AUTHENTICATE")
                return None
            if self._inbuf:
                # Commands sent with STARTTLS in plain text must not run as if TLS protected them (the
                # STARTTLS injection flaw, CVE-2011-0411 in Postfix).
                self._response("BYE", "commands pipelined after STARTTLS")
                self.state = State.CLOSED
                return Close()
            self._ok("Begin TLS negotiation now")
            return StartTLS()
        if name == "AUTHENTICATE":
            return self._authenticate(args)
        if name == "UNAUTHENTICATE":
            # RFC 5804 2.14.1: back to the non-authenticated state; the shell's account is no longer used.
            if self.state is not State.AUTHENTICATED:
                self._no("not authenticated")
                return None
            self.state = State.NOT_AUTHENTICATED
            self.username = None
            self._ok()
            return None
        if name == "CHECKSCRIPT" or name in _OPERATIONS:
            if self.state is not State.AUTHENTICATED:
                self._no("AUTHENTICATE first")
                return None
            kinds = "s" if name == "CHECKSCRIPT" else _OPERATIONS[name]
            values = self._arguments(args, kinds)
            if values is None:
                self._no(f"{name} takes {len(kinds)} argument(s)")
                return None
            if name == "CHECKSCRIPT":
                self._check(str(values[0]))
                return None
            return Operation(name, tuple(values))
        self._no(f"unknown command {name}")
        return None

    @staticmethod
    def _arguments(args: list[str | int | bytes], kinds: str) -> list[str | int] | None:
        if len(args) != len(kinds):
            return None
        values: list[str | int] = []
        for arg, kind in zip(args, kinds, strict=True):
            if kind == "n":
                if not isinstance(arg, int):
                    return None
                values.append(arg)
            else:
                if not isinstance(arg, bytes):
                    return None
                try:
                    values.append(arg.decode("utf-8"))
                except UnicodeDecodeError:
                    return None
        return values

    def _check(self, content: str) -> None:
        try:
            compile_script(content)
        except SieveError as exc:
            self._no(str(exc))
            return
        self._ok()

    # Authentication (RFC 5804 2.1, SASL PLAIN of RFC 4616)

    def _authenticate(self, args: list[str | int | bytes]) -> Event | None:
        if self.state is not State.NOT_AUTHENTICATED:
            self._no("already authenticated")
            return None
        if not self.tls and not self._plaintext_allowed:
            self._no("use STARTTLS before sending a password", "ENCRYPT-NEEDED")
            return None
        if not args or not isinstance(args[0], bytes) or len(args) > 2:
            self._no("AUTHENTICATE takes a mechanism name and an optional initial response")
            return None
        if args[0].upper() != b"PLAIN":
            self._no("only the PLAIN mechanism is offered")
            return None
        if len(args) == 2:
            return self._plain(args[1])
        self._sasl_pending = True
        self._line(b'""')  # an empty challenge: PLAIN has nothing to say first
        return None

    def _sasl_response(self, tokens: list[str | int | bytes]) -> Event | None:
        if len(tokens) != 1 or not isinstance(tokens[0], bytes):
            self._no("malformed SASL response")
            return None
        if tokens[0] == b"*":
            self._no("authentication cancelled")
            return None
        return self._plain(tokens[0])

    def _plain(self, response: object) -> Event | None:
        if not isinstance(response, bytes):
            self._no("malformed SASL response")
            return None
        try:
            decoded = base64.b64decode(response, validate=True)
            authzid, authcid, password = decoded.decode("utf-8").split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self._no("malformed PLAIN response")
            return None
        if authzid and authzid != authcid:
            self._no("acting for another user is not allowed", "AUTH-TOO-WEAK")
            return None
        self.username = authcid
        return Authenticate(authcid, password)

    # Answers from the shell

    def _answered(self, kind: type) -> None:
        if self._awaiting is not kind:
            raise RuntimeError(f"no {kind.__name__} is outstanding")
        self._awaiting = None

    def login_succeeded(self) -> None:
        self._answered(Authenticate)
        self.state = State.AUTHENTICATED
        self._ok("Logged in")

    def login_failed(self) -> None:
        self._answered(Authenticate)
        self.username = None
        self._failures += 1
        if self._failures >= MAX_AUTH_FAILURES:
            self._response("BYE", "too many failed logins")
            self.state = State.CLOSED
        else:
            self._no("authentication failed")

    def temporary_failure(self) -> None:
        """The store could not answer (database down): the command failed, the session goes on."""
        if self._awaiting is Authenticate:
            self.username = None
        self._awaiting = None
        self._no("temporary failure, try again later", "TRYLATER")

    def tls_started(self) -> None:
        self._answered(StartTLS)
        self.tls = True
        # RFC 5804 2.2: the capabilities again, now that TLS is in place.
        self._capabilities()
        self._ok()

    def respond(self, ok: bool, text: str = "", code: str = "") -> None:
        """The outcome of an Operation: OK, or NO with a response code and text."""
        self._answered(Operation)
        if ok:
            self._ok(text, code)
        else:
            self._no(text, code)

    def send_scripts(self, scripts: list[tuple[str, bool]]) -> None:
        """LISTSCRIPTS (RFC 5804 2.7): one line per script, the active one marked."""
        self._answered(Operation)
        for name, active in scripts:
            self._line(quoted_or_literal(name) + (b" ACTIVE" if active else b""))
        self._ok()

    def send_script(self, content: str) -> None:
        """GETSCRIPT (RFC 5804 2.9): the script as a literal, then OK."""
        self._answered(Operation)
        data = content.encode("utf-8")
        self._line(b"{%d}\r\n" % len(data) + data)
        self._ok()
