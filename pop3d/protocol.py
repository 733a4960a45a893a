"""The POP3 protocol core (RFC 1939, RFC 2449, RFC 2595, RFC 5034) without any I/O.

Bytes go in with `receive_data`; `next_event` parses one command at a time and either answers it on its own
(STAT, LIST, DELE, ...: the scan listing lives here) or returns an event the I/O shell must act on
(`Authenticate`, `Retrieve`, `StartTLS`, `Update`, `Close`). While an event is outstanding no further command is
parsed; the shell reports the outcome with the matching method (`login_succeeded`, `send_message`, ...), so
pipelined commands (RFC 2449 6.6) are answered strictly in order. Replies accumulate until `data_to_send`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pop3d import messages

# RFC 2449 4: a command line, including the CRLF, is at most 255 octets.
MAX_COMMAND_LINE = 255
# A SASL response is not a command; RFC 5034 4 lets it exceed the command limit, so it gets a roomier bound.
MAX_SASL_LINE = 8192
_NUMBER = re.compile(r"[0-9]{1,10}")


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"
    CLOSED = "closed"


@dataclass(frozen=True)
class ScanEntry:
    """One message of the maildrop as the session sees it."""

    uid: int
    size: int  # octets RETR sends before byte-stuffing (see pop3d.messages)
    body_id: int


@dataclass(frozen=True)
class Maildrop:
    """The Inbox as it was when the session logged in (RFC 1939 8: later arrivals wait for the next session)."""

    uidvalidity: int
    entries: tuple[ScanEntry, ...]


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


@dataclass(frozen=True)
class Authenticate:
    """Check these credentials; answer with login_succeeded, login_failed, maildrop_in_use or temporary_failure."""

    username: str
    password: str


@dataclass(frozen=True)
class Retrieve:
    """Fetch this message's stored bytes; answer with send_message or message_unavailable.

    `lines` is None for RETR and the body line count for TOP.
    """

    number: int
    entry: ScanEntry
    lines: int | None


@dataclass(frozen=True)
class StartTLS:
    """Send what is queued, then negotiate TLS and call tls_started."""


@dataclass(frozen=True)
class Update:
    """The UPDATE state (RFC 1939 6): remove these UIDs in one transaction and call update_finished."""

    uids: tuple[int, ...]


@dataclass(frozen=True)
class Close:
    """Send what is queued, then close the connection."""


Event = Authenticate | Retrieve | StartTLS | Update | Close
E = TypeVar("E", Authenticate, Retrieve, StartTLS, Update)


class Pop3Connection:
    def __init__(
        self,
        *,
        tls: bool,
        stls_available: bool,
        plaintext_allowed: bool,
        implementation: str = "Mailsite",
        hostname: str = "localhost",
        on_command: Callable[[str], None] | None = None,
    ) -> None:
        self.state = State.AUTHORIZATION
        self._on_command = on_command  # told the name of each known command it is given (the shell counts them)
        self.tls = tls
        self._stls_available = stls_available
        self._plaintext_allowed = plaintext_allowed
        self._implementation = implementation
        self._inbuf = bytearray()
        self._outbuf: list[bytes] = []
        self._discarding = False  # inside an over-long line, dropping bytes up to its end
        self._sasl_pending = False  # "+ " sent for AUTH PLAIN, the next line is the response
        self._user: str | None = None
        self._awaiting: Event | None = None  # the event whose outcome the shell has yet to report
        self._maildrop = Maildrop(0, ())
        self._deleted: set[int] = set()  # message numbers marked by DELE
        self._ok(f"{hostname} POP3 server ready")

    # --- I/O side ---------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        self._inbuf += data

    def data_to_send(self) -> bytes:
        data = b"".join(self._outbuf)
        self._outbuf.clear()
        return data

    def next_event(self) -> Event | _NeedData:
        if self._awaiting is not None:
            raise RuntimeError(f"the outcome of {type(self._awaiting).__name__} has not been reported yet")
        while self.state is not State.CLOSED:
            line = self._next_line()
            if line is None:
                return NEED_DATA
            event = self._handle_line(line)
            if event is not None:
                self._awaiting = None if isinstance(event, Close) else event
                return event
        return Close()

    def _next_line(self) -> bytes | None:
        while True:
            limit = MAX_SASL_LINE if self._sasl_pending else MAX_COMMAND_LINE
            end = self._inbuf.find(b"\n")
            if end < 0:
                if len(self._inbuf) >= limit:
                    # The line cannot fit any more: drop it now so a flood costs no memory.
                    self._discarding = True
                    self._inbuf.clear()
                return None
            line = bytes(self._inbuf[: end + 1])
            del self._inbuf[: end + 1]
            if self._discarding or len(line) > limit:
                self._discarding = False
                self._sasl_pending = False
                self._err("Line too long")
                continue
            return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    # --- Outcomes reported by the shell -----------------------------------------------------------------------

    def _complete(self, kind: type[E]) -> E:
        event = self._awaiting
        if not isinstance(event, kind):
            raise RuntimeError(f"no {kind.__name__} is outstanding")
        self._awaiting = None
        return event

    def login_succeeded(self, maildrop: Maildrop) -> None:
        self._complete(Authenticate)
        self._maildrop = maildrop
        self.state = State.TRANSACTION
        self._ok(f"Logged in, {len(maildrop.entries)} messages")

    def login_failed(self) -> None:
        """Wrong password, unknown user and throttled logins all look alike (the shell delays the reply)."""
        self._complete(Authenticate)
        self._err("Authentication failed", "AUTH")

    def maildrop_in_use(self) -> None:
        self._complete(Authenticate)
        self._err("Mailbox is in use by another POP3 session", "IN-USE")

    def temporary_failure(self) -> None:
        """The store could not be reached; the client may try again (RFC 3206 SYS/TEMP)."""
        self._complete(Authenticate)
        self._err("Temporary failure, try again later", "SYS/TEMP")

    def send_message(self, raw: bytes, lines: int | None) -> None:
        retrieve = self._complete(Retrieve)
        # The scan size is the length with every line ending in CRLF (Message.crlf_size, counted when the message
        # was stored): a message as long as that has no bare LF and goes out as stored, without a scan of its bytes.
        data = raw if len(raw) == retrieve.entry.size else messages.to_crlf(raw)
        if lines is None:
            self._outbuf.append(f"+OK {len(data)} octets\r\n".encode())
        else:
            data = messages.top(data, lines)
            self._outbuf.append(b"+OK\r\n")
        self._outbuf.append(messages.multiline(data))

    def message_unavailable(self, number: int) -> None:
        """The message left the store during the session (removed over IMAP, say)."""
        self._complete(Retrieve)
        self._err(f"Message {number} no longer exists")

    def tls_started(self) -> None:
        self._complete(StartTLS)
        self.tls = True

    def update_finished(self, removed: bool) -> None:
        self._complete(Update)
        if removed:
            self._ok(f"Logging out, {len(self._deleted)} messages deleted")
        else:
            # RFC 1939 6: an error in UPDATE is reported with -ERR; nothing was removed (one transaction).
            self._err("Deleting messages failed, none were removed", "SYS/TEMP")
        self.state = State.CLOSED

    def timed_out(self) -> None:
        """The autologout timer ran out (RFC 1939 3): the session ends without entering UPDATE."""
        self._err("Autologout: idle for too long")
        self.state = State.CLOSED

    # --- Commands ---------------------------------------------------------------------------------------------

    def _handle_line(self, line: bytes) -> Event | None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._sasl_pending = False
            self._err("Command line is not valid UTF-8")
            return None
        if self._sasl_pending:
            self._sasl_pending = False
            return self._sasl_response(text)
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        table = _AUTHORIZATION if self.state is State.AUTHORIZATION else _TRANSACTION
        handler = table.get(keyword)
        if self._on_command is not None and (keyword in _AUTHORIZATION or keyword in _TRANSACTION):
            self._on_command(keyword)
        if handler is None:
            if keyword in _AUTHORIZATION or keyword in _TRANSACTION:
                self._err(f"{keyword} is not allowed in the {self.state.value} state")
            else:
                self._err("Unknown command")
            return None
        return handler(self, rest)

    def _capa(self, rest: str) -> None:
        if rest:
            self._err("CAPA takes no arguments")
            return
        # RFC 2449 5: capabilities may differ by state; only offer what can be used now.
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state is State.AUTHORIZATION:
            if self._password_allowed():
                caps += ["USER", "SASL PLAIN"]
            if self._stls_available and not self.tls:
                caps.append("STLS")
        caps.append(f"IMPLEMENTATION {self._implementation}")
        self._multiline("Capability list follows", caps)

    def _password_allowed(self) -> bool:
        return self.tls or self._plaintext_allowed

    def _refuse_plaintext(self) -> None:
        self._err("Plain-text authentication needs TLS; use STLS first", "AUTH")

    def _user_command(self, rest: str) -> None:
        if not self._password_allowed():
            self._refuse_plaintext()
        elif not rest or " " in rest:
            self._err("Syntax: USER name")
        else:
            self._user = rest
            self._ok("Send PASS")

    def _pass(self, rest: str) -> Authenticate | None:
        user, self._user = self._user, None
        if user is None:
            self._err("Send USER first")
            return None
        # RFC 1939 7: PASS has one argument, so spaces in it belong to the password.
        return Authenticate(user, rest)

    def _auth(self, rest: str) -> Authenticate | None:
        self._user = None
        if not rest:
            # Many clients probe mechanisms with a bare AUTH (the RFC 1734 listing form).
            self._multiline("Supported mechanisms follow", ["PLAIN"] if self._password_allowed() else [])
            return None
        mechanism, _, initial = rest.partition(" ")
        if mechanism.upper() != "PLAIN":
            self._err("Unsupported authentication mechanism")
            return None
        if not self._password_allowed():
            self._refuse_plaintext()
            return None
        if not initial:
            self._sasl_pending = True
            self._outbuf.append(b"+ \r\n")
            return None
        # RFC 5034 4: "=" stands for an empty initial response.
        return self._sasl_response("" if initial == "=" else initial)

    def _sasl_response(self, text: str) -> Authenticate | None:
        if text == "*":
            self._err("Authentication cancelled")  # RFC 5034 4
            return None
        try:
            decoded = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            self._err("Invalid base64 in SASL response")
            return None
        parts = decoded.split("\0")
        # RFC 4616 2: [authzid] NUL authcid NUL passwd; acting as someone else (a different authzid) is refused.
        if len(parts) != 3 or not parts[1] or parts[0] not in ("", parts[1]):
            self._err("Authentication failed", "AUTH")
            return None
        return Authenticate(parts[1], parts[2])

    def _stls(self, rest: str) -> StartTLS | None:
        if rest:
            self._err("STLS takes no arguments")
            return None
        if self.tls:
            self._err("TLS is active already")  # RFC 2595 4
            return None
        if not self._stls_available:
            self._err("STLS is not available")
            return None
        self._user = None
        # Anything pipelined after STLS arrived in plain text and must not be taken as sent under TLS.
        self._inbuf.clear()
        self._ok("Begin TLS negotiation")
        return StartTLS()

    def _quit(self, rest: str) -> Update | Close:
        if self.state is State.TRANSACTION and self._deleted:
            self.state = State.UPDATE
            entries = self._maildrop.entries
            return Update(tuple(sorted(entries[number - 1].uid for number in self._deleted)))
        # RFC 1939 4: QUIT in AUTHORIZATION ends the session without entering UPDATE.
        self._ok("Logging out")
        self.state = State.CLOSED
        return Close()

    def _stat(self, rest: str) -> None:
        if rest:
            self._err("STAT takes no arguments")
            return
        live = self._live()
        self._ok(f"{len(live)} {sum(entry.size for _, entry in live)}")

    def _list(self, rest: str) -> None:
        if rest:
            found = self._message(rest)
            if found:
                self._ok(f"{found[0]} {found[1].size}")
            return
        live = self._live()
        size = sum(entry.size for _, entry in live)
        self._multiline(f"{len(live)} messages ({size} octets)", [f"{n} {entry.size}" for n, entry in live])

    def _uidl(self, rest: str) -> None:
        uidvalidity = self._maildrop.uidvalidity
        if rest:
            found = self._message(rest)
            if found:
                self._ok(f"{found[0]} {uidvalidity}.{found[1].uid}")
            return
        self._multiline("Unique-id listing follows", [f"{n} {uidvalidity}.{entry.uid}" for n, entry in self._live()])

    def _retr(self, rest: str) -> Retrieve | None:
        found = self._message(rest)
        return Retrieve(found[0], found[1], None) if found else None

    def _top(self, rest: str) -> Retrieve | None:
        number, _, lines = rest.partition(" ")
        if not _NUMBER.fullmatch(lines):
            self._err("Syntax: TOP message lines")
            return None
        found = self._message(number)
        return Retrieve(found[0], found[1], int(lines)) if found else None

    def _dele(self, rest: str) -> None:
        found = self._message(rest)
        if found:
            self._deleted.add(found[0])
            self._ok(f"Message {found[0]} deleted")

    def _noop(self, rest: str) -> None:
        if rest:
            self._err("NOOP takes no arguments")
        else:
            self._ok("")

    def _rset(self, rest: str) -> None:
        if rest:
            self._err("RSET takes no arguments")
            return
        self._deleted.clear()
        self._ok(f"{len(self._maildrop.entries)} messages")

    def _already_authenticated(self, rest: str) -> None:
        self._err("Already authenticated")

    # --- Helpers ----------------------------------------------------------------------------------------------

    def _live(self) -> list[tuple[int, ScanEntry]]:
        return [(n, e) for n, e in enumerate(self._maildrop.entries, 1) if n not in self._deleted]

    def _message(self, argument: str) -> tuple[int, ScanEntry] | None:
        """The message a message-number argument names, or None after sending the -ERR."""
        if not _NUMBER.fullmatch(argument):
            self._err("Syntax: a message number is expected")
            return None
        number = int(argument)
        if not 1 <= number <= len(self._maildrop.entries):
            self._err(f"No message {number}")
            return None
        # RFC 1939 5: a message marked as deleted may not be referred to.
        if number in self._deleted:
            self._err(f"Message {number} is deleted")
            return None
        return number, self._maildrop.entries[number - 1]

    def _ok(self, text: str) -> None:
        self._outbuf.append(f"+OK {text}\r\n".encode() if text else b"+OK\r\n")

    def _err(self, text: str, code: str | None = None) -> None:
        # RFC 2449 8: a response code in brackets right after -ERR.
        prefix = f"-ERR [{code}] " if code else "-ERR "
        self._outbuf.append(f"{prefix}{text}\r\n".encode())

    def _multiline(self, first: str, lines: list[str]) -> None:
        body = "".join(f"{line}\r\n" for line in lines)
        self._ok(first)
        self._outbuf.append(messages.multiline(body.encode()) if body else b".\r\n")


_Handler = Callable[[Pop3Connection, str], Event | None]
_AUTHORIZATION: dict[str, _Handler] = {
    "CAPA": Pop3Connection._capa,
    "USER": Pop3Connection._user_command,
    "PASS": Pop3Connection._pass,
    "AUTH": Pop3Connection._auth,
    "STLS": Pop3Connection._stls,
    "QUIT": Pop3Connection._quit,
}
_TRANSACTION: dict[str, _Handler] = {
    "CAPA": Pop3Connection._capa,
    "STAT": Pop3Connection._stat,
    "LIST": Pop3Connection._list,
    "UIDL": Pop3Connection._uidl,
    "RETR": Pop3Connection._retr,
    "TOP": Pop3Connection._top,
    "DELE": Pop3Connection._dele,
    "NOOP": Pop3Connection._noop,
    "RSET": Pop3Connection._rset,
    "QUIT": Pop3Connection._quit,
    "USER": Pop3Connection._already_authenticated,
    "PASS": Pop3Connection._already_authenticated,
    "AUTH": Pop3Connection._already_authenticated,
    "STLS": Pop3Connection._already_authenticated,
}
