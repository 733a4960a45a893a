"""The SMTP protocol engine: aiosmtpd's `SMTP` with our replies, limits and deadlines.

aiosmtpd parses commands and DATA; this subclass adds what the listeners need around it:
- every reply passes through `policy.enhance` (RFC 3463 codes, our wording) and error replies are counted;
  at the session's error limit the server answers 421 and closes;
- per-IP concurrent connection limit, checked before the greeting;
- deadlines: the next command (RFC 5321 4.5.3.2.7), a started command line (against clients that trickle
  one byte at a time), silence inside DATA (4.5.3.2.5) and the whole DATA transfer; each ends with 421;
- AUTH PLAIN/LOGIN checked through the handler, asynchronously (aiosmtpd's own authenticator is synchronous);
- per-session command line limits (aiosmtpd keeps them in a class attribute shared by every session);
- replies to pipelined MAIL and RCPT wait for the next reply while more commands are already here (RFC 2920
  3.2), so a pipelined transaction costs one send for MAIL, RCPT and DATA together; EHLO's lines go out in one
  send too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import inspect
import logging
import re
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, TLSSetupException, _AuthMechAttr

from ops import metrics, proxy
from smtpd import etrn, parameters, policy
from smtpd.connections import ConnectionCounter

log = logging.getLogger("smtpd")


@dataclass(frozen=True)
class SessionLimits:
    command_timeout: float
    line_deadline: float
    data_block_timeout: float
    data_deadline: float
    max_errors: int


# A Path whose address is two RFC 5322 dot-atoms (RFC 5321 4.1.2's Dot-string local part and a host name). aiosmtpd
# parses every path with the email package's header parser (defining a class per call): most of its cost per MAIL
# and RCPT. Paths of this common shape, for which that parser's answer is the text between the brackets, are split
# here; everything else (quoted local parts, address literals, comments, UTF-8, "<>") still goes to aiosmtpd.
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
# Like that parser, it consumes the white space after the path (and leaves a comment there to it).
_PLAIN_PATH = re.compile(rf"<({_DOT_ATOM}@{_DOT_ATOM})>[ \t]*+(?!\()")


def plain_path(arg: str) -> tuple[str, str] | None:
    """(address, rest of the line) for `<dot-string@host.name> ...`; None when aiosmtpd's parser must decide."""
    match = _PLAIN_PATH.match(arg)
    if match is None:
        return None
    return match.group(1), arg[match.end() :]


# The parameters `smtpd.parameters` takes out of MAIL and RCPT before aiosmtpd reads them (RFC 3461 4, RFC 8689 3).
_OUR_PARAMETERS = re.compile(r"\b(?:RET|ENVID|REQUIRETLS|NOTIFY|ORCPT)\b", re.IGNORECASE)

# aiosmtpd's wording for DATA refusals (policy.enhance adds the enhanced codes).
_LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
_TOO_MUCH_DATA = "552 Error: Too much mail data"
PROXY_NOT_ACCEPTED = "554 5.7.0 PROXY protocol header not accepted from this address"
# RFC 5322 2.1 and RFC 5321 2.3.8: no NUL anywhere in a message (we offer no BINARYMIME). Permanent: the
# sender retrying the same bytes for days would change nothing.
_NUL_IN_MESSAGE = "554 5.6.0 Message contains a NUL character"
_OUT_OF_SYNC = "554 5.5.0 SMTP protocol synchronization error: commands sent before our reply (no PIPELINING)"
# RFC 3030 2: "BDAT" SP chunk-size [SP "LAST"]. A command we cannot read does not say where the next one starts.
_BDAT = re.compile(r"([0-9]{1,20})(?: +(LAST))?", re.IGNORECASE)
_BDAT_SYNTAX = "501 5.5.4 Syntax: BDAT chunk-size [LAST]; closing, the chunk's end is unknown"
_DATA_AFTER_BDAT = "503 5.5.1 DATA cannot follow BDAT in one transaction"  # RFC 3030 3
_BDAT_NEEDS_RCPT = "503 5.5.1 Error: need RCPT command"
_BDAT_NEEDS_EHLO = "503 5.5.1 Error: send EHLO first (BDAT is an ESMTP extension)"
_CHUNK_READ = 65536


def _longest_line(data: bytes | bytearray) -> int:
    """Octets in the longest CRLF-terminated line, counting its CRLF."""
    return max(map(len, data.split(b"\r\n"))) + 2


class _NothingListed:
    """What aiosmtpd's `__init__` is given as the handler: it lists nothing (see `_Tables`)."""

    def __dir__(self) -> list[str]:
        return []


_NOTHING_LISTED = _NothingListed()


@dataclass(frozen=True)
class _Tables:
    """aiosmtpd's command, hook and AUTH tables for one session class and handler, worked out once.

    aiosmtpd builds them anew for every connection, from `dir()`, `inspect.getmembers()` and, for handle_EHLO,
    `inspect.signature()` of the session and of the handler: about 60 us of the 75 us a session object cost on
    the 2-core test machine. The session is built with nothing to list (`MailsiteSMTP.__dir__` and
    `_NothingListed`) and gets these tables instead, with its own methods bound by name: the same tables,
    by the same rules (a test compares them with aiosmtpd's own)."""

    commands: tuple[tuple[str, str], ...]  # (command, the session's method name)
    own_mechanisms: tuple[tuple[str, str], ...]  # (AUTH mechanism, the session's method name)
    handler_mechanisms: dict[str, _AuthMechAttr]
    hooks: dict[str, Callable[..., Any]]
    ehlo_hook_version: str | None

    @classmethod
    def of(cls, session: type, handler: Any) -> _Tables:
        def names(owner: type, prefix: str) -> list[str]:
            return sorted(name for name in dir(owner) if name.startswith(prefix))

        def mechanism(name: str, method: Any) -> str:
            return getattr(method, "__auth_mechanism_name__", name.replace("auth_", "").replace("__", "-"))

        hooks = {name.replace("handle_", ""): getattr(handler, name) for name in names(type(handler), "handle_")}
        ehlo = hooks.get("EHLO")
        version = None if ehlo is None else {4: "old", 5: "new"}[len(inspect.signature(ehlo).parameters)]
        return cls(
            commands=tuple((name.replace("smtp_", ""), name) for name in names(session, "smtp_")),
            own_mechanisms=tuple((mechanism(name, getattr(session, name)), name) for name in names(session, "auth_")),
            handler_mechanisms={
                mechanism(name, getattr(handler, name)): _AuthMechAttr(getattr(handler, name), False)
                for name in names(type(handler), "auth_")
            },
            hooks=hooks,
            ehlo_hook_version=version,
        )


# Per session class, per handler (a listener's handler lives as long as its process).
_TABLES: weakref.WeakKeyDictionary[Any, dict[type, _Tables]] = weakref.WeakKeyDictionary()


def _tables(session: type, handler: Any) -> _Tables:
    by_class = _TABLES.setdefault(handler, {})
    if session not in by_class:
        by_class[session] = _Tables.of(session, handler)
    return by_class[session]


def _line_limits() -> collections.defaultdict[str, int]:
    return collections.defaultdict(lambda: policy.COMMAND_LINE_LIMIT, {"MAIL": policy.MAIL_LINE_LIMIT})


class MailsiteEnvelope(Envelope):
    """aiosmtpd's envelope, plus what the handler's RCPT lookup found for each accepted recipient."""

    def __init__(self) -> None:
        super().__init__()
        self.resolutions: dict[str, Any] = {}
        # Submission: the authenticated user's own addresses, read at MAIL for the From: check at DATA.
        self.own_addresses: list[str] = []
        # Submission: the domain of the From: authors, read once and authorised at DATA; the relay signs for it.
        self.author_domain: str | None = None
        # DSN (RFC 3461) and REQUIRETLS (RFC 8689) parameters of MAIL, and of RCPT by accepted recipient.
        self.mail_parameters = parameters.MailParameters()
        self.rcpt_parameters: dict[str, parameters.RcptParameters] = {}
        # BDAT (RFC 3030): the chunks received so far; None until this transaction's first BDAT.
        self.chunks: bytearray | None = None


class MailsiteSMTP(SMTP):
    command_size_limit = policy.COMMAND_LINE_LIMIT

    _listing = True

    def __dir__(self) -> list[str]:
        return [*super().__dir__()] if self._listing else []  # nothing while aiosmtpd's __init__ runs: `_Tables`

    def __init__(
        self,
        handler: Any,
        *,
        role: policy.ListenerRole,
        limits: SessionLimits,
        connections: ConnectionCounter,
        implicit_tls: bool = False,
        client_address: str | None = None,
        **options: Any,
    ) -> None:
        self._listing = False
        super().__init__(_NOTHING_LISTED, timeout=limits.command_timeout, **options)
        self._listing = True
        self.event_handler = handler
        tables = _tables(type(self), handler)
        self._smtp_methods = {command: getattr(self, name) for command, name in tables.commands}
        self._handle_hooks = dict(tables.hooks)
        self._ehlo_hook_ver = tables.ehlo_hook_version
        # aiosmtpd's order: the session's own mechanisms, then the handler's, which win; excluded ones left out.
        mechanisms = {mechanism: _AuthMechAttr(getattr(self, name), True) for mechanism, name in tables.own_mechanisms}
        mechanisms.update(tables.handler_mechanisms)
        excluded = options.get("auth_exclude_mechanism") or ()
        self._auth_methods = {mechanism: m for mechanism, m in mechanisms.items() if mechanism not in excluded}
        self.role = role
        self.limits = limits
        self.connections = connections
        self.implicit_tls = implicit_tls
        if implicit_tls:
            # The whole connection is TLS, so AUTH needs no STARTTLS; set after __init__ because aiosmtpd
            # warns about auth_require_tls=False without knowing about implicit TLS.
            self._auth_require_tls = False
        self.command_size_limits = _line_limits()
        self.errors = 0
        self.client_ip = "unknown"
        # Behind a balancer (ops.proxied), the client's address from its PROXY header.
        self.client_address = client_address
        self._counted = False
        self._first_data = True
        self._started = 0.0
        self._greeted = False
        self._raw_replies = False
        self._released = False
        self._in_data = False
        self._data_reply = ""
        self.data_logged = False
        self._holding = False  # within MAIL or RCPT: a success reply may wait for the next reply
        self._held: list[bytes] = []
        self._line_timer: asyncio.TimerHandle | None = None
        self._block_timer: asyncio.TimerHandle | None = None
        self.session_tasks: list[asyncio.Task[None]] = []  # live as long as the connection (revocation watch)

    def _create_envelope(self) -> MailsiteEnvelope:
        return MailsiteEnvelope()

    # --- Connection -------------------------------------------------------------------------------------------

    # --- ops: connection set-up (PROXY protocol, per-IP count, session log lines, metrics) ---------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None and self._original_transport is None:  # a new client, not a STARTTLS upgrade
            peer = transport.get_extra_info("peername")
            self.client_ip = self.client_address or (str(peer[0]) if peer else "unknown")
            self._started = time.monotonic()
            metrics.CONNECTIONS.labels(self.role.name).inc()
            # ops: each command counted as aiosmtpd looks it up (mailsite_commands_total)
            self._smtp_methods = _CountedCommands(self._smtp_methods)
        super().connection_made(transport)

    async def _admit(self) -> bool:
        """Count the session against its client's address, before the greeting; False at the client's limit.
        Over Redis (every host's count) the session waits for the answer; the event loop does not."""
        if not await self.connections.admit(self.client_ip):
            log.warning(
                "smtp refused listener=%s client=%s reason=too-many-connections", self.role.name, self.client_ip
            )
            metrics.CONNECTIONS_REFUSED.labels(self.role.name, "too-many-connections").inc()
            return False
        self._counted = True
        log.info("smtp session start listener=%s client=%s", self.role.name, self.client_ip)
        return True

    def _refuse_proxy_header(self) -> None:
        """A PROXY header where none may come: from a peer not in MAILSITE_PROXY_PROTOCOL_FROM (it could claim any
        client address), or a second one."""
        log.warning("smtp refused listener=%s client=%s reason=untrusted-proxy-header", self.role.name, self.client_ip)
        metrics.CONNECTIONS_REFUSED.labels(self.role.name, "untrusted-proxy-header").inc()
        if self.transport is not None:
            self.transport.write(PROXY_NOT_ACCEPTED.encode() + b"\r\n")  # type: ignore[attr-defined]
        self._close()

    def connection_lost(self, error: Exception | None) -> None:
        self._cancel_timers()
        for task in self.session_tasks:
            task.cancel()
        self._release()
        super().connection_lost(error)

    def _release(self) -> None:
        """The session is over once our side closes it (QUIT, 421): its place under the per-IP limit is free
        then, not only once the connection is gone, which after TLS waits for the client's close_notify."""
        if self._counted and not self._released:  # aiosmtpd may call connection_lost twice after a failed TLS handshake
            self._released = True
            self.connections.release(self.client_ip)
            duration = time.monotonic() - self._started
            metrics.SESSION_SECONDS.labels(self.role.name).observe(duration)
            log.info("smtp session end listener=%s client=%s duration=%.3f", self.role.name, self.client_ip, duration)

    async def smtp_QUIT(self, arg: str) -> None:
        await super().smtp_QUIT(arg)  # the 221 goes out first: the client need not wait for our bookkeeping
        if self.transport is None or self.transport.is_closing():  # not after a 501 for "QUIT x": that session goes on
            self._release()

    # --- end ops ----------------------------------------------------------------------------------------------

    @property
    def tls_active(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    def tls_version(self) -> str | None:
        if self.transport is None:
            return None
        ssl_object = self.transport.get_extra_info("ssl_object")
        return ssl_object.version() if ssl_object is not None else None

    # --- Deadlines --------------------------------------------------------------------------------------------

    def _cancel_timers(self) -> None:
        for timer in (self._line_timer, self._block_timer):
            if timer is not None:
                timer.cancel()
        self._line_timer = self._block_timer = None

    def _reset_timeout(self, duration: float | None = None) -> None:
        # Called when a valid command arrives: the line deadline starts again with the next line.
        if self._line_timer is not None:
            self._line_timer.cancel()
            self._line_timer = None
        super()._reset_timeout(duration)

    def _timeout_cb(self) -> None:
        if self.transport is None:
            return
        log.info("smtp timeout client=%s", self.client_ip)
        self._write_held()
        self.transport.write(policy.TIMEOUT.encode() + b"\r\n")  # type: ignore[attr-defined]
        self._cancel_timers()
        super()._timeout_cb()

    def data_received(self, data: bytes) -> None:
        if self._first_data:
            self._first_data = False
            if proxy.looks_like_header(data):
                self._refuse_proxy_header()
                return
        if not self._in_data and self._sent_ahead(data):
            log.warning(
                "smtp refused listener=%s client=%s reason=pipelining-after-helo", self.role.name, self.client_ip
            )
            metrics.CONNECTIONS_REFUSED.labels(self.role.name, "out-of-sync").inc()
            if self.transport is not None:
                self.transport.write(_OUT_OF_SYNC.encode() + b"\r\n")  # type: ignore[attr-defined]
            self._close()
            return
        if self._in_data:
            if self._block_timer is not None:
                self._block_timer.cancel()
            self._block_timer = self.loop.call_later(self.limits.data_block_timeout, self._timeout_cb)
        elif self._line_timer is None:
            self._line_timer = self.loop.call_later(self.limits.line_deadline, self._timeout_cb)
        super().data_received(data)

    def _sent_ahead(self, data: bytes) -> bool:
        """Whether a client that said HELO (so was offered no PIPELINING, RFC 2920 3) sent a command before our
        reply to the one before it: it is not waiting for replies, and the rest of its commands would be run
        blindly (Postfix calls this improper command pipelining)."""
        if self.session is None or not self.session.host_name or self.session.extended_smtp:
            return False
        pending = bytes(self._reader._buffer) + data  # type: ignore[attr-defined]  # asyncio has no public view
        end = pending.find(b"\r\n")
        return end != -1 and end + 2 < len(pending)

    async def smtp_DATA(self, arg: str) -> None:
        if isinstance(self.envelope, MailsiteEnvelope) and self.envelope.chunks is not None:
            await self.push(_DATA_AFTER_BDAT)
            return
        await self._receiving(self._data(arg))

    async def smtp_BDAT(self, arg: str) -> None:
        """A chunk of the message (RFC 3030 2), read by its size: no dot-stuffing and no end line. Every chunk is
        read, even one refused, so the next command is where the client put it. The last chunk goes the way a
        message after DATA goes (`_take_message`)."""
        match = _BDAT.fullmatch((arg or "").strip())
        if match is None:
            await self.push(_BDAT_SYNTAX)
            self._close()
            return
        size, last = int(match.group(1)), match.group(2) is not None
        envelope = self.envelope
        assert self.session is not None
        refusal = None
        if not self.session.extended_smtp:
            refusal = _BDAT_NEEDS_EHLO
        elif self._auth_required and not self.session.authenticated:
            refusal = "530 5.7.0 Authentication required"
        elif not isinstance(envelope, MailsiteEnvelope) or not envelope.rcpt_tos:
            refusal = _BDAT_NEEDS_RCPT
        if refusal is not None or not isinstance(envelope, MailsiteEnvelope):
            await self._read_chunk(size, None)
            await self.push(refusal or _BDAT_NEEDS_RCPT)
            return
        if envelope.chunks is None:
            envelope.chunks = bytearray()
        await self._receiving(self._chunk(envelope, envelope.chunks, size, last))

    async def _chunk(self, envelope: MailsiteEnvelope, chunks: bytearray, size: int, last: bool) -> None:
        limit = self.data_size_limit or 0
        over = bool(limit) and len(chunks) + size > limit
        # RFC 1870 6.1 and RFC 3030 2: a message over the limit is refused with 552 once its chunk is read; the
        # transaction ends there, so later chunks of it get 503.
        await self._read_chunk(size, None if over else chunks)
        if over:
            self._set_post_data_state()
            await self.push(_TOO_MUCH_DATA)
            return
        if not last:
            self._in_data = False  # a chunk's reply is not the message's
            self._holding = True  # RFC 3030 4.2: replies to BDAT may be pipelined as MAIL's and RCPT's
            try:
                await self.push(f"250 2.0.0 {size} octets received")
            finally:
                self._holding = False
            return
        content = bytes(chunks)
        refusal = _LINE_TOO_LONG if _longest_line(content) > policy.TEXT_LINE_LIMIT else None
        await self._take_message(content, refusal)

    async def _read_chunk(self, size: int, into: bytearray | None) -> None:
        """Read `size` octets into `into` (None: read and drop them)."""
        if self._held and len(self._reader._buffer) < size:  # type: ignore[attr-defined]  # no public view
            self._write_held()  # never wait for input with replies held (RFC 2920 3.2)
        remaining = size
        while remaining:
            try:
                piece = await self._reader.readexactly(min(remaining, _CHUNK_READ))
            except asyncio.CancelledError:
                log.info("smtp connection lost during BDAT client=%s", self.client_ip)
                self._writer.close()
                raise
            remaining -= len(piece)
            if into is not None:
                into += piece

    async def _receiving(self, transfer: Coroutine[Any, Any, None]) -> None:
        """Run a message transfer (DATA, or a BDAT chunk) under the DATA deadlines; count and log what ends it."""
        # Refusals aiosmtpd makes itself while reading DATA (size, line length) never reach the handler, which
        # logs every message it sees; the log line for those is written here.
        self.data_logged = False
        self._data_reply = ""
        sender, recipients = (self.envelope.mail_from, list(self.envelope.rcpt_tos)) if self.envelope else ("", [])
        self._in_data = True
        self._reset_timeout(self.limits.data_deadline)
        self._block_timer = self.loop.call_later(self.limits.data_block_timeout, self._timeout_cb)
        try:
            await transfer
        finally:
            self._in_data = False
            if self._block_timer is not None:
                self._block_timer.cancel()
                self._block_timer = None
            if self.transport is not None:
                self._reset_timeout()
            if self._data_reply[:3] not in ("", "354"):
                result = "accepted" if self._data_reply.startswith("250") else "refused"
                metrics.SMTP_MESSAGES.labels(self.role.name, result, metrics.reply_code(self._data_reply)).inc()
            if self._data_reply[:3] not in ("", "354") and not self.data_logged:
                log.info(
                    "smtp message refused client=%s sender=<%s> recipients=%s result=%r",
                    self.client_ip,
                    "" if sender == "<>" else sender,
                    ",".join(recipients),
                    self._data_reply,
                )

    async def _data(self, arg: str) -> None:
        """aiosmtpd's DATA, with its replies, reading the content by chunks instead of line by line."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        await self._take_message(*await self._read_content())

    async def _take_message(self, content: bytes, refusal: str | None) -> None:
        """The whole message is here (after DATA's end line or the last BDAT chunk): refuse it, or hand it to the
        handler, which replies 250 only once it is stored or queued."""
        assert self.envelope is not None
        if refusal is None and b"\x00" in content:
            refusal = _NUL_IN_MESSAGE
        if refusal is not None:
            self._set_post_data_state()
            await self.push(refusal)
            return
        self.envelope.content = self.envelope.original_content = content
        started = time.monotonic()
        status = await self._call_handler_hook("DATA")
        metrics.SMTP_DELIVERY_SECONDS.labels(self.role.name).observe(time.monotonic() - started)
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_content(self) -> tuple[bytes, str | None]:
        """The content up to the end-of-data line (RFC 5321 4.1.1.4), dot-unstuffed (4.5.2), or the refusal once
        it has all been read: over the size limit, or a line over 1000 octets with its CRLF (4.5.3.1.6).

        aiosmtpd awaits each line; here each read takes everything up to the next ".<CRLF>" (or what the stream
        holds), which is the end of data only when that dot starts a line. Lines end at CRLF alone, so a dot
        after a bare LF or CR ends nothing (SMTP smuggling).
        """
        data = bytearray()
        tail = b"\r\n"  # the bytes before this read; DATA's own CRLF at first, so an empty message ends at once
        size = 0
        refusal = None
        while True:
            try:
                chunk = await self._reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as error:  # no ".<CRLF>" within the stream's limit: take what it holds
                chunk = await self._reader.readexactly(error.consumed)
            except asyncio.CancelledError:
                log.info("smtp connection lost during DATA client=%s", self.client_ip)
                self._writer.close()
                raise
            window = tail + chunk
            ended = window.endswith(b"\r\n.\r\n")
            tail = window[-4:]
            if ended:
                chunk = chunk[:-3]
            size += len(chunk)
            if refusal is None and self.data_size_limit and size > self.data_size_limit:
                refusal = _LINE_TOO_LONG if _longest_line(data) > policy.TEXT_LINE_LIMIT else _TOO_MUCH_DATA
            if refusal is None:
                data += chunk
            else:
                data.clear()
            if ended:
                break
        if refusal is None and _longest_line(data) > policy.TEXT_LINE_LIMIT:
            refusal = _LINE_TOO_LONG
        if refusal is not None:
            return b"", refusal
        if data.startswith(b"."):
            del data[0]  # a bytearray drops its first byte without copying the rest
        return bytes(data).replace(b"\r\n.", b"\r\n"), None

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = plain_path(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    # --- Replies ----------------------------------------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        if not self._greeted and isinstance(status, str) and status.startswith("220 "):
            status = await self._greeting(status)
        if isinstance(status, bytes) or self._raw_replies or not self._greeted:
            # The greeting and the HELO/EHLO response carry no enhanced codes (RFC 2034 3); bytes are AUTH
            # challenges.
            self._greeted = True
            if isinstance(status, str) and status[3:4] == "-":
                # A line of a multiline reply (EHLO's) goes out with the reply's last line, in one send.
                self._held.append(self._encode(status) + b"\r\n")
                return
            await self._send(status if isinstance(status, bytes) else self._encode(status))
            if status == policy.TOO_MANY_CONNECTIONS:
                self._close()
            return
        reply = policy.enhance(status)
        if self._in_data:
            self._data_reply = reply
        if self._holding and reply.startswith("2") and self._pipelining() and self._more_commands():
            # RFC 2920 3.2: a server may defer the replies to MAIL and RCPT while the client's next commands are
            # already here, as long as it never waits for input with replies unsent. A pipelining client's
            # MAIL, RCPT and DATA then get one send for their three replies instead of three.
            self._held.append(self._encode(reply) + b"\r\n")
            return
        await self._send(self._encode(reply))
        if reply.startswith("421"):
            self._close()
        elif policy.is_error(reply):
            self.errors += 1
            if policy.too_many_errors(self.errors, self.limits.max_errors):
                log.info("smtp error limit client=%s errors=%d", self.client_ip, self.errors)
                await super().push(policy.TOO_MANY_ERRORS)
                self._close()

    async def _greeting(self, greeting: str) -> str:
        """A client at its connection limit is greeted with 421 and the connection closed (RFC 5321 3.8). RFC
        5321 3.1: a client refused at connection (a DNS blocklist) is greeted with 554, then answered 503 to
        every command but QUIT until it leaves (or its errors reach the session's limit)."""
        try:
            if not await self._admit():
                return policy.TOO_MANY_CONNECTIONS
            refusal = await self.event_handler.connection_refusal(self)
        except asyncio.CancelledError:
            # The session is cancelled (the client left, the listener stops) before aiosmtpd's command loop, which
            # closes the connection on cancellation: close it as it would.
            self._writer.close()
            raise
        if refusal is None:
            return greeting
        self._smtp_methods = {name: self._refused_command for name in self._smtp_methods} | {"QUIT": self.smtp_QUIT}
        return refusal

    async def _refused_command(self, arg: str | None) -> None:
        await self.push(policy.REFUSED_AT_GREETING)

    def _close(self) -> None:
        self._release()
        if self.transport is not None:
            self._write_held()
            self.transport.close()

    def _encode(self, reply: str) -> bytes:
        return reply.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")

    def _pipelining(self) -> bool:
        """Whether the client said EHLO, so was offered PIPELINING."""
        return self.session is not None and self.session.extended_smtp

    def _more_commands(self) -> bool:
        """Whether a whole command line is already waiting in the input."""
        return b"\n" in self._reader._buffer  # type: ignore[attr-defined]  # asyncio has no public view

    async def _send(self, reply: bytes) -> None:
        """Send a reply, after those held back for it (aiosmtpd adds the CRLF)."""
        if self._held:
            reply, self._held = b"".join(self._held) + reply, []
        await super().push(reply)  # type: ignore[type-var]  # aiosmtpd takes either, typed as AnyStr

    def _write_held(self) -> None:
        """Before our side writes on its own and closes: the held replies go first, in order."""
        if self._held and self.transport is not None:
            self.transport.write(b"".join(self._held))  # type: ignore[attr-defined]
        self._held = []

    async def smtp_MAIL(self, arg: str) -> None:
        self._holding = True
        try:
            assert self.session is not None
            ready = self.envelope is not None and not self.envelope.mail_from
            if ready and (self.session.authenticated or not self._auth_required):
                taken = self._parameters(
                    arg, "FROM:", lambda words: parameters.mail_parameters(words, tls=self.tls_active)
                )
                if isinstance(taken, str):
                    await self.push(taken)
                    return
                if taken is not None:
                    arg, found = taken
                    await super().smtp_MAIL(arg)
                    if isinstance(self.envelope, MailsiteEnvelope) and self.envelope.mail_from:
                        self.envelope.mail_parameters = found
                    return
            await super().smtp_MAIL(arg)
        finally:
            self._holding = False

    async def smtp_RCPT(self, arg: str) -> None:
        self._holding = True
        try:
            if isinstance(self.envelope, MailsiteEnvelope) and self.envelope.mail_from:
                taken = self._parameters(arg, "TO:", parameters.rcpt_parameters)
                if isinstance(taken, str):
                    await self.push(taken)
                    return
                if taken is not None:
                    arg, found = taken
                    before = len(self.envelope.rcpt_tos)
                    await super().smtp_RCPT(arg)
                    if len(self.envelope.rcpt_tos) > before:
                        self.envelope.rcpt_parameters[self.envelope.rcpt_tos[-1]] = found
                    return
            await super().smtp_RCPT(arg)
        finally:
            self._holding = False

    def _parameters(self, arg: str | None, keyword: str, parse: Callable[[list[str]], Any]) -> Any:
        """For MAIL and RCPT with DSN or REQUIRETLS parameters: the command without them and what they say, or
        the reply refusing them; None when there are none (or aiosmtpd refuses the command anyway)."""
        if not arg or self.session is None or not self.session.extended_smtp or not _OUR_PARAMETERS.search(arg):
            return None
        arg = arg.rstrip()
        stripped = self._strip_command_keyword(keyword, arg)
        if stripped is None:
            return None
        address, rest = self._getaddr(stripped)
        if not address or rest is None or not arg.endswith(rest):
            return None
        taken = parse(rest.split())
        if isinstance(taken, str):
            return taken
        found, words = taken
        return " ".join([arg[: len(arg) - len(rest)].rstrip(), *words]), found

    async def smtp_EHLO(self, hostname: str) -> None:
        self._raw_replies = bool(hostname)
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._raw_replies = False
            # aiosmtpd raises the MAIL limit on every EHLO; start from ours each time.
            self.command_size_limits = _line_limits()

    async def smtp_ETRN(self, arg: str | None) -> None:
        if self.envelope is not None and self.envelope.mail_from is not None:
            await self.push(etrn.IN_TRANSACTION)
            return
        await self.push(await self.event_handler.etrn(self, arg or ""))

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self._tls_protocol is not None:
            # aiosmtpd would stack a second TLS layer; RFC 3207 4.2 forbids a new STARTTLS once TLS is active.
            await self.push("503 5.5.1 TLS already active")
            return
        try:
            await super().smtp_STARTTLS(arg)
        except TLSSetupException as exc:
            # The client's failure, not ours: one line without a traceback, then what aiosmtpd would do.
            log.info(
                "smtp TLS handshake failed listener=%s client=%s error=%r",
                self.role.name,
                self.client_ip,
                str(exc.__cause__ or exc),
            )
            self._close()
            self.connection_lost(exc)

    async def smtp_HELO(self, hostname: str) -> None:
        self._raw_replies = bool(hostname)
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._raw_replies = False

    # --- AUTH (RFC 4954, RFC 4616) ------------------------------------------------------------------------------

    async def _initial_or_challenge(self, args: list[str], challenge: str) -> bytes | None:
        if len(args) == 1:
            blob = await self.challenge_auth(challenge)
            return None if blob is MISSING else blob  # type: ignore[return-value]
        try:
            return base64.b64decode(args[1].encode(), validate=True)
        except (binascii.Error, ValueError):
            await self.push("501 5.5.2 Cannot decode base64")
            return None

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        blob = await self._initial_or_challenge(args, "")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Cannot split authentication value")
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:
            # Acting as another user (RFC 4616 authorization identity) is not supported.
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")
        return await self.event_handler.authenticate(self, login, password)

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        login = await self._initial_or_challenge(args, "Username:")
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await self.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self.event_handler.authenticate(self, login, password)


_count_command = metrics.command_counter("smtp")


class _CountedCommands(dict[str, Any]):
    """aiosmtpd's table of command methods, counting each command it finds (one counter per command name,
    bound once per process: about 5 µs a command on the 2-core test machine)."""

    def get(self, command: str, default: Any = None) -> Any:  # type: ignore[override]
        method = super().get(command, default)
        if method is not None:
            _count_command(command)
        return method
