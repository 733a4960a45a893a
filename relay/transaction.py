"""One SMTP mail transaction as the relay's client sends it, without I/O: commands out, replies in.

The caller writes what `to_send()` returns and feeds each reply, in order, to `receive()` until `result` is set.
When the server offers PIPELINING (RFC 2920), RSET (for a reused session), MAIL, every RCPT and DATA go out in one
write and their replies are read in order; otherwise one command waits for its reply before the next. When it
offers CHUNKING (RFC 3030), the message goes as BDAT chunks, the last one marked LAST, instead of DATA.

Each recipient ends with its own reply: its RCPT refusal, or the reply to the message. A failure of the whole
transaction (RSET, MAIL, DATA or a 4yz reply to the message) is a `Failed` with that reply; the caller decides
whether the recipients go to the next MX. After a `Failed`, or with replies still `outstanding`, the session is
out of step and must be closed.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CHUNK_SIZE = 1024 * 1024  # octets per BDAT chunk; most messages go in one chunk, with LAST


@dataclass(frozen=True)
class Features:
    """The EHLO keywords the transaction can use."""

    pipelining: bool = False
    chunking: bool = False
    size: bool = False
    eight_bit: bool = False
    smtputf8: bool = False


@dataclass(frozen=True)
class Done:
    replies: dict[str, tuple[int, str]]  # every recipient's final (code, text)


@dataclass(frozen=True)
class Failed:
    code: int | None  # None: no usable reply (a reused session's RSET failed)
    text: str


class _Expect(enum.Enum):
    RSET = "RSET"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"  # 354 wanted
    MESSAGE = "message"  # the reply to the message: after the data's final dot, or to BDAT ... LAST
    CHUNK = "chunk"  # a BDAT chunk before the last
    EMPTY = "empty"  # the reply to a lone dot sent after an unwanted 354


def _accepted(code: int) -> bool:
    return code in (250, 251)


def dot_stuffed(raw: bytes) -> bytes:
    """The message as DATA sends it: leading dots doubled, ending in CRLF, then the final dot (RFC 5321 4.5.2)."""
    body = re.sub(rb"(?m)^\.", b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def bdat_chunks(raw: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    """BDAT commands with their data, the last marked LAST (RFC 3030 2); an empty message is `BDAT 0 LAST`."""
    pieces = [raw[start : start + size] for start in range(0, len(raw), size)] or [b""]
    return [
        b"BDAT %d%s\r\n%s" % (len(piece), b" LAST" if number == len(pieces) - 1 else b"", piece)
        for number, piece in enumerate(pieces)
    ]


class Transaction:
    def __init__(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        features: Features,
        *,
        reset: bool = False,
        mail_options: Sequence[str] = (),
        rcpt_options: Callable[[str], Sequence[str]] = lambda rcpt: (),
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        """`mail_options` and `rcpt_options(rcpt)`: parameters the caller adds (DSN, REQUIRETLS) ahead of ours."""
        self.features = features
        self.raw = raw
        self.chunk_size = chunk_size
        self.result: Done | Failed | None = None
        self.replies: dict[str, tuple[int, str]] = {}
        self.accepted: list[str] = []
        self._staged: deque[tuple[bytes, _Expect, str]] = deque()  # (bytes, reply it wants, recipient)
        self._outstanding: deque[tuple[_Expect, str]] = deque()  # sent, reply not read yet
        options = list(mail_options)
        if features.size:
            options.append(f"SIZE={len(raw)}")
        if features.eight_bit and any(byte > 127 for byte in raw):
            options.append("BODY=8BITMIME")
        if not (sender + "".join(recipients)).isascii():
            if not features.smtputf8:
                self.result = Failed(553, "5.6.7 the server does not support SMTPUTF8 for non-ASCII addresses")
                return
            options.append("SMTPUTF8")
        if reset:
            self._stage(b"RSET\r\n", _Expect.RSET)
        self._stage(" ".join([f"MAIL FROM:<{sender}>", *options]).encode() + b"\r\n", _Expect.MAIL)
        for rcpt in recipients:
            self._stage(" ".join([f"RCPT TO:<{rcpt}>", *rcpt_options(rcpt)]).encode() + b"\r\n", _Expect.RCPT, rcpt)
        self._rcpts_left = len(recipients)
        if features.pipelining and not features.chunking:
            # RFC 2920 3.1: DATA may end the group; its 354 (or refusal) is read after the RCPT replies.
            self._stage(b"DATA\r\n", _Expect.DATA)

    @property
    def outstanding(self) -> int:
        """Commands sent whose replies have not been read."""
        return len(self._outstanding)

    def _stage(self, data: bytes, expect: _Expect, rcpt: str = "") -> None:
        self._staged.append((data, expect, rcpt))

    def to_send(self) -> bytes:
        """The bytes to write now (b"" when the next step is to read a reply)."""
        if self.result is not None:
            return b""
        if self.features.pipelining:
            batch = list(self._staged)
            self._staged.clear()
        elif self._staged and not self._outstanding:
            batch = [self._staged.popleft()]
        else:
            batch = []
        self._outstanding.extend((expect, rcpt) for _, expect, rcpt in batch)
        return b"".join(data for data, _, _ in batch)

    def receive(self, code: int, text: str) -> None:
        """The next reply, for the oldest command sent and not yet answered."""
        if self.result is not None or not self._outstanding:
            raise RuntimeError("no reply is expected")
        expect, rcpt = self._outstanding.popleft()
        if expect is _Expect.RSET:
            if code != 250:
                self.result = Failed(None, f"RSET answered {code} {text}".strip())
        elif expect is _Expect.MAIL:
            if code != 250:
                # The RCPTs (and DATA) sent behind it are answered 503; the session is closed, not read further.
                self.result = Failed(code, text)
        elif expect is _Expect.RCPT:
            self.replies[rcpt] = (code, text)
            if _accepted(code):
                self.accepted.append(rcpt)
            self._rcpts_left -= 1
            if self._rcpts_left == 0:
                self._after_envelope()
        elif expect is _Expect.DATA:
            self._after_data_command(code, text)
        elif expect is _Expect.EMPTY:
            # Whatever the server says about an empty message, no recipient was accepted: nothing was sent.
            self.result = Done(self.replies)
        else:
            self._after_message(expect, code, text)

    def _after_envelope(self) -> None:
        if not self.accepted:
            if not (self.features.pipelining and not self.features.chunking):
                self.result = Done(self.replies)
            # else the pipelined DATA's reply is still to come.
            return
        if self.features.chunking:
            chunks = bdat_chunks(self.raw, self.chunk_size)
            for chunk in chunks[:-1]:
                self._stage(chunk, _Expect.CHUNK)
            self._stage(chunks[-1], _Expect.MESSAGE)
        elif not self.features.pipelining:
            self._stage(b"DATA\r\n", _Expect.DATA)

    def _after_data_command(self, code: int, text: str) -> None:
        if not self.accepted:
            if code == 354:
                # RFC 2920 3.1: DATA accepted although every RCPT failed; end it with an empty message.
                self._stage(b".\r\n", _Expect.EMPTY)
            else:
                self.result = Done(self.replies)  # 503/554: no valid recipients, as expected
            return
        if code == 354:
            self._stage(dot_stuffed(self.raw), _Expect.MESSAGE)
        elif 500 <= code < 600:
            self._finish(code, text)  # the message is refused for every accepted recipient
        else:
            self.result = Failed(code, text)

    def _after_message(self, expect: _Expect, code: int, text: str) -> None:
        if expect is _Expect.CHUNK and code == 250:
            return
        # RFC 3030 2: after a refused chunk no more are sent; chunks already pipelined are discarded by the
        # server, and the session is closed since their replies are not read.
        self._finish(code, text)

    def _finish(self, code: int, text: str) -> None:
        """The reply that decides the message for every accepted recipient."""
        if 400 <= code < 500 or not 200 <= code < 600:
            self.result = Failed(code, text)
            return
        for rcpt in self.accepted:
            self.replies[rcpt] = (code, text)
        self.result = Done(self.replies)
