"""The remote side of an IMAP import: imaplib with a bound on every literal the server sends.

imaplib reads a literal whole, whatever size the server announces; `_Bounded` refuses one over the limit
before reading it (`LiteralTooLarge`), so a server that lies about sizes or sends a 1 GB literal costs no
memory. The connection is then out of step and is dropped; the importer reconnects.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from dataclasses import dataclass, field

from transfer import imap_response
from transfer.imap_response import Fetched, Folder

MODES = ("tls", "starttls", "plain")


class LiteralTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the server sent a literal of {size} bytes, over the limit of {limit}")


class SourceError(Exception):
    """The server refused something or answered what cannot be read: the reason, for the report."""


# Connection trouble that a reconnect may cure.
DROPPED = (OSError, EOFError, imaplib.IMAP4.abort, LiteralTooLarge, imap_response.ResponseError)


class _Bounded:
    literal_limit = 0

    def read(self, size: int) -> bytes:
        if size > self.literal_limit:
            raise LiteralTooLarge(size, self.literal_limit)
        return super().read(size)  # type: ignore[misc]


class _Plain(_Bounded, imaplib.IMAP4):
    pass


class _TLS(_Bounded, imaplib.IMAP4_SSL):
    pass


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    user: str
    password: str = field(repr=False)  # never in a log line or a traceback's locals
    mode: str = "tls"
    cafile: str | None = None
    timeout: float = 60.0

    @property
    def source(self) -> str:
        """The key imported messages are recorded under."""
        return f"imap://{self.user}@{self.host}:{self.port}"


def quote(name: bytes) -> bytes:
    """A mailbox name as an IMAP quoted string (RFC 3501 4.3), for names of 7-bit text."""
    if any(byte > 0x7E or byte < 0x20 for byte in name):
        raise SourceError(f"the folder name {name!r} cannot be sent as a quoted string")
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class Session:
    """One logged-in connection. Every method raises one of DROPPED when the connection failed."""

    def __init__(self, endpoint: Endpoint, literal_limit: int) -> None:
        context = ssl.create_default_context(cafile=endpoint.cafile)
        client: imaplib.IMAP4
        if endpoint.mode == "tls":
            client = _TLS(endpoint.host, endpoint.port, ssl_context=context, timeout=endpoint.timeout)
        else:
            client = _Plain(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        client.literal_limit = literal_limit  # type: ignore[attr-defined]
        self.client = client
        step = "STARTTLS"
        try:
            if endpoint.mode == "starttls":
                client.starttls(ssl_context=context)
            step = "sign-in"
            client.login(endpoint.user, endpoint.password)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as error:
            self.close()
            raise SourceError(f"{step} refused: {error}") from None

    def _check(self, typ: str, data: list, what: str) -> list:
        if typ != "OK":
            raise SourceError(f"{what}: {typ} {data[-1]!r}")
        return data

    def folders(self) -> list[Folder]:
        typ, data = self.client.list()
        return imap_response.folders(self._check(typ, data, "LIST"))

    def examine(self, name: bytes) -> tuple[int, int]:
        """Select a folder read-only: (UIDVALIDITY, number of messages)."""
        typ, data = self.client.select(quote(name).decode("ascii"), readonly=True)
        self._check(typ, data, f"EXAMINE {name!r}")
        _, validity = self.client.response("UIDVALIDITY")
        if not validity or not validity[0] or not validity[0].isdigit():
            raise SourceError(f"{name!r}: the server gave no UIDVALIDITY")
        return int(validity[0]), int(data[0] or 0)

    def count(self, name: bytes) -> int:
        """How many messages a folder holds (STATUS MESSAGES, RFC 3501 6.3.10), without selecting it."""
        try:
            typ, data = self.client.status(quote(name).decode("ascii"), "(MESSAGES)")
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as error:  # a BAD or NO: the connection itself is fine
            raise SourceError(f"STATUS refused: {error}") from None
        found = re.search(rb"MESSAGES (\d+)", b" ".join(d for d in self._check(typ, data, "STATUS") if d))
        return int(found[1]) if found else 0

    def sizes(self) -> dict[int, int]:
        """UID -> RFC822.SIZE for every message of the selected folder."""
        typ, data = self.client.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
        return {item.uid: item.size or 0 for item in imap_response.fetches(self._check(typ, data, "FETCH"))}

    def fetch(self, uids: list[int]) -> list[Fetched]:
        """Flags, internal date and the exact bytes of these messages; BODY.PEEK leaves \\Seen alone remotely."""
        uid_set = ",".join(str(uid) for uid in uids)
        typ, data = self.client.uid("FETCH", uid_set, "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        return [item for item in imap_response.fetches(self._check(typ, data, "FETCH")) if item.body is not None]

    def close(self) -> None:
        try:
            self.client.logout()
        except (*DROPPED, imaplib.IMAP4.error):
            with contextlib.suppress(OSError):
                self.client.shutdown()
