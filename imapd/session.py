"""One IMAP connection: reads bytes into the protocol core, runs command handlers, writes responses.

Untagged updates about the selected folder (new messages, expunges, other sessions' flag changes) are
collected when the folder changed (the change hub says so, or the command is NOOP, CHECK or IDLE, where a
client expects news) and sent before the tagged response, except that EXPUNGE is held back during FETCH, STORE
and SEARCH (RFC 3501 7.4.1); held-back messages stay in the view until the next allowed point. What changed is
asked of the store as "since mod-sequence N" (new UIDs, flags changed, UIDs in the expunge log), never by
re-reading the folder's UIDs.

\\Recent (RFC 3501 2.3.2) is shared through the store: a read-write SELECT, and a session that sees new
messages arrive, claims the folder's messages from its mark (`RecentMark`) on and moves that mark past them,
so each message is recent to exactly one session of any process.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import ssl
import zlib
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError

from credentials.revocation import ends_session
from imapd import sequence, store, views
from imapd.protocol import NEED_DATA, Bad, Command, Connection, Continue, Line, ParseError, State
from mailboxes import actions, asyncdb, changes
from mailboxes.actions.folders import claim_recent
from mailboxes.models import Account
from mailsite.tls import plaintext_login_allowed
from ops import proxy

log = logging.getLogger(__name__)

WRITE_BATCH = 256 * 1024
READ_SIZE = 65536
SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


class No(Exception):
    """A command that fails: "<tag> NO <text>"."""


class Closed(Exception):
    """The client went away or the session must end."""


@dataclass
class Selected:
    mailbox_id: int
    name: str
    readonly: bool
    uidvalidity: int
    modseq: int
    uids: array[int]  # the view: message sequence number n is uids[n - 1]
    recent: set[int] = field(default_factory=set)
    # Expunged UIDs not yet reported (RFC 3501 7.4.1), with the mod-sequence of their expunge.
    pending_gone: dict[int, int] = field(default_factory=dict)
    # Flags last told to the client per UID, so a change this session made itself is not announced twice.
    told: dict[int, list[str]] = field(default_factory=dict)
    told_modseq: dict[int, int] = field(default_factory=dict)
    saved: list[int] | None = None  # UIDs of the result saved by SEARCH RETURN (SAVE) (RFC 5182)
    keywords: list[str] = field(default_factory=list)  # keywords announced in FLAGS so far
    # `uids` are shared with the other sessions on the folder (the process's view of it, imapd.views, or the
    # same view grown by the same new messages, `store.Changes.grown`) until this session first removes some.
    uids_shared: bool = True

    def own_uids(self) -> array[int]:
        """The session's UIDs to change: copied from the shared view the first time."""
        if self.uids_shared:
            self.uids = array("I", self.uids)
            self.uids_shared = False
        return self.uids

    def seq_of(self, uid: int) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        return index + 1 if index < len(self.uids) and self.uids[index] == uid else None

    @property
    def max_uid(self) -> int:
        return self.uids[-1] if self.uids else 0


# A handler returns the text of its tagged OK, or None when it has sent its tagged reply itself.
Handler = Callable[["Session", Command], Awaitable[str | None]]


class Session:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        tls: bool,
        handlers: dict[State, dict[str, Handler]],
        remote_ip: str | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.tls = tls
        self.handlers = handlers
        self.conn = Connection(settings.MAILSITE_MAX_MESSAGE_SIZE)
        peer = writer.get_extra_info("peername")
        # The client's address: the peer's, or the one a trusted balancer named in its PROXY header.
        self.remote_ip: str | None = remote_ip or (peer[0] if peer else None)
        self._first_input = True
        self.account: Account | None = None
        self.selected: Selected | None = None
        self._ending: asyncio.Task[None] | None = None  # BYE and close after a revocation
        self.changes: asyncio.Queue[int] | None = None
        self.folder_changed = False
        # RFC 7162: CONDSTORE once any CONDSTORE-enabling command ran; QRESYNC only by ENABLE QRESYNC.
        self.condstore = False
        self.qresync = False
        # RFC 9051 after ENABLE IMAP4rev2 (Appendix E): no \\Recent, SEARCH answers ESEARCH, SELECT sends LIST.
        self.rev2 = False
        self.utf8_accept = False  # RFC 6855 after ENABLE UTF8=ACCEPT
        self._out: list[bytes] = []
        self._out_size = 0
        self._exit = contextlib.AsyncExitStack()
        # COMPRESS=DEFLATE (RFC 4978): raw deflate both ways once the client asked for it.
        self._deflate: zlib._Compress | None = None
        self._inflate: zlib._Decompress | None = None

    # --- output --------------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)

    async def write(self, data: bytes) -> None:
        """Queue output and flush when enough has gathered (large FETCH replies go out as they are made)."""
        self.send(data)
        if self._out_size >= WRITE_BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            if self._deflate is not None:
                # RFC 4978 4: a sync flush after each batch, so the client can decode all of it at once.
                data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self.writer.write(data)
            self._out.clear()
            self._out_size = 0
            await self.writer.drain()

    @property
    def utf8(self) -> bool:
        """Folder names are UTF-8, not modified UTF-7 (RFC 9051 5.1, RFC 6855 3)."""
        return self.rev2 or self.utf8_accept

    @property
    def plaintext_auth_allowed(self) -> bool:
        return self.tls or plaintext_login_allowed(self.remote_ip)

    def capabilities(self) -> str:
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "ID"]
        caps += ["SPECIAL-USE"]
        caps += ["UNSELECT", "ENABLE", "CHILDREN", "ESEARCH", "SEARCHRES", "LIST-EXTENDED", "LIST-STATUS"]
        caps += [
            "STATUS=SIZE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "SORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
        ]
        caps += ["COMPRESS=DEFLATE", "CONDSTORE", "QRESYNC", "CREATE-SPECIAL-USE", "BINARY", "UTF8=ACCEPT"]
        if self.conn.state is State.NOT_AUTHENTICATED:
            if not self.tls:
                caps.append("STARTTLS")
            caps.append("AUTH=PLAIN" if self.plaintext_auth_allowed else "LOGINDISABLED")
        return " ".join(caps)

    # --- input ---------------------------------------------------------------------------------------------

    @property
    def compressed(self) -> bool:
        return self._deflate is not None

    def start_compression(self) -> None:
        """Deflate from the next byte on, both ways (RFC 4978 3; the tagged OK went out uncompressed)."""
        self._deflate = zlib.compressobj(wbits=-15)
        self._inflate = zlib.decompressobj(wbits=-15)

    async def _read(self) -> None:
        inflate = self._inflate
        if inflate is not None and inflate.unconsumed_tail:
            # Inflated in bounded pieces, so a small compressed input cannot fill memory at once.
            self.conn.receive_data(inflate.decompress(inflate.unconsumed_tail, READ_SIZE))
            return
        try:
            # A timeout scope rather than wait_for, which wraps every read of every command in a task of its own.
            async with asyncio.timeout(settings.MAILSITE_IMAP_IDLE_TIMEOUT):
                data = await self.reader.read(READ_SIZE)
        except TimeoutError:
            self.send(b"* BYE Autologout; idle for too long\r\n")
            raise Closed from None
        except (ConnectionError, ssl.SSLError):
            raise Closed from None
        if not data:
            raise Closed
        if self._first_input:
            self._first_input = False
            if proxy.looks_like_header(data):  # a header only comes first, and only from a balancer
                log.warning("imap refused client=%s reason=untrusted-proxy-header", self.remote_ip)
                self.send(b"* BYE PROXY protocol header not accepted from this address\r\n")
                raise Closed
        if inflate is not None:
            try:
                data = inflate.decompress(data, READ_SIZE)
            except zlib.error:
                self.send(b"* BYE Invalid compressed data\r\n")
                raise Closed from None
        self.conn.receive_data(data)

    async def read_line(self) -> bytes:
        """The next raw line from the client (AUTHENTICATE responses, IDLE's DONE)."""
        self.conn.expect_line()
        await self.flush()
        while True:
            event = self.conn.next_event()
            if isinstance(event, Line):
                return event.data
            if event is not NEED_DATA:
                raise ParseError("Expected a line")
            await self._read()

    # --- the loop ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        self.send(f"* OK [CAPABILITY {self.capabilities()}] Mailsite IMAP4rev1 ready\r\n".encode())
        try:
            async with self._exit:
                while self.conn.state is not State.LOGOUT:
                    event = self.conn.next_event()
                    if event is NEED_DATA:
                        await self.flush()
                        await self._read()
                    elif isinstance(event, Continue):
                        self.send(b"+ Ready for literal data\r\n")
                        await self.flush()
                    elif isinstance(event, Bad):
                        if event.fatal:
                            self.send(f"* BYE {event.text}\r\n".encode())
                            break
                        self.send(f"{event.tag} BAD {event.text}\r\n".encode())
                    elif isinstance(event, Command):
                        await self.dispatch(event)
            await self.flush()
        except Closed:
            with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
                await self.flush()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 5)

    async def dispatch(self, command: Command) -> None:
        handler = self.handlers[self.conn.state][command.name]
        tag = command.tag
        try:
            text = await handler(self, command)
        except ParseError as exc:
            self.send(f"{tag} BAD {exc}\r\n".encode())
            return
        except No as exc:
            await self.report_changes(command.name)
            self.send(f"{tag} NO {exc}\r\n".encode())
            return
        except actions.ServiceError as exc:
            self.send(f"{tag} NO {exc}\r\n".encode())
            return
        except DatabaseError:
            log.exception("database error in %s", command.name)
            self.send(f"{tag} NO [UNAVAILABLE] The mail store is not available; try again later\r\n".encode())
            return
        except Closed:
            raise
        except Exception:
            log.exception("error in %s", command.name)
            self.send(f"{tag} NO [SERVERBUG] Internal error\r\n".encode())
            return
        if text is None:
            return
        if self.conn.state is not State.LOGOUT:
            await self.report_changes(command.name)
        self.send(f"{tag} OK {text}\r\n".encode())

    # --- authentication and folder changes ----------------------------------------------------------------

    async def logged_in(self, account: Account, *, app_password_id: int | None = None) -> None:
        self.account = account
        self.conn.state = State.AUTHENTICATED
        self.changes = await self._exit.enter_async_context(changes.hub().subscribe(account.pk))
        # Revoking the app password it signed in with ends the session (credentials/revocation.py).
        await self._exit.enter_async_context(ends_session(account.pk, app_password_id, self._revoked))

    def _revoked(self) -> None:
        self._ending = asyncio.get_running_loop().create_task(self._end_revoked())

    async def _end_revoked(self) -> None:
        self.send(b"* BYE The app password of this session was revoked\r\n")
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
            await self.flush()
        self.writer.close()  # the session's read then ends, and with it the session

    def _drain_changes(self) -> None:
        if self.changes is None or self.selected is None:
            return
        while not self.changes.empty():
            folder = self.changes.get_nowait()
            if folder in (self.selected.mailbox_id, changes.ANYWHERE):
                self.folder_changed = True

    async def report_changes(self, command_name: str, *, force: bool = False) -> None:
        """Send the untagged responses for what changed in the selected folder, where RFC 3501 allows."""
        selected = self.selected
        if selected is None:
            return
        self._drain_changes()
        if force or self.folder_changed or command_name in ("NOOP", "CHECK"):
            self.folder_changed = False
            found, recent = await self._read_changes(selected)
            if found.folder_gone:
                self.send(b"* BYE The selected folder was deleted or renamed by another session\r\n")
                raise Closed
            self._apply(selected, found, recent)
        # RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH; they wait for the next command.
        if not selected.pending_gone:
            return
        if command_name not in ("FETCH", "STORE", "SEARCH"):
            gone = sorted(selected.pending_gone)
            selected.pending_gone.clear()
            self._send_expunges(selected, gone)
        elif self.condstore:
            # RFC 7162 errata 1810: while expunges wait, the client must not take a MODSEQ it saw in a FETCH
            # for its resynchronisation point, or a reconnect would miss them: tell it one below the first.
            self.send(b"* OK [HIGHESTMODSEQ %d] Expunges pending\r\n" % (min(selected.pending_gone.values()) - 1))

    async def _read_changes(self, selected: Selected) -> tuple[store.Changes, list[int]]:
        """What changed in the folder since the session's mod-sequence, read once for all the process's sessions
        that know the folder alike (imapd.views), and the new messages that are \\Recent to this session."""
        mailbox_id, uids = selected.mailbox_id, selected.uids

        def read() -> Awaitable[store.Changes]:
            return asyncdb.call(store.changes_since, mailbox_id, selected.modseq, uids, False)

        found = await views.shared((mailbox_id, selected.modseq, selected.max_uid, len(uids)), read)
        if found.from_view:
            found = await read()
        if not found.recent or selected.readonly:
            return found, found.recent
        up_to = found.new[-1] + 1
        first = await views.claim_once(mailbox_id, up_to, lambda: asyncdb.call(claim_recent, mailbox_id, up_to))
        return found, [] if first is None else [uid for uid in found.new if uid >= first]

    def _apply(self, selected: Selected, found: store.Changes, recent: list[int]) -> None:
        """Bring the view up to `found` (which other sessions may share: it is only read)."""
        for uid, modseq, flags in found.flags:
            if (seq := selected.seq_of(uid)) is None:
                continue
            # A change this session made and reported itself is not announced again, except that with
            # CONDSTORE the client is told every new mod-sequence (RFC 7162 3.1.4.1).
            if selected.told.get(uid) != flags or (self.condstore and selected.told_modseq.get(uid, 0) < modseq):
                selected.told[uid] = flags
                selected.told_modseq[uid] = modseq
                self.announce_keywords(flags)
                if uid in selected.recent:
                    flags = [*flags, "\\Recent"]
                self.send(self.flags_fetch(seq, uid, flags, modseq))
        for uid, modseq in found.gone:
            if selected.seq_of(uid) is not None:
                selected.pending_gone.setdefault(uid, modseq)
        if found.new:
            if selected.uids_shared:
                selected.uids = found.grown(selected.uids)
            else:
                selected.uids.extend(found.new)
            self.send(b"* %d EXISTS\r\n" % len(selected.uids))
            if not self.rev2:  # IMAP4rev2 has no RECENT response (RFC 9051 Appendix E)
                selected.recent.update(recent)
                self.send(b"* %d RECENT\r\n" % len(selected.recent))
        selected.modseq = found.highestmodseq

    def flags_fetch(self, seq: int, uid: int | None, flags: list[str], modseq: int) -> bytes:
        """An untagged FETCH of flags (with UID when given, and MODSEQ under CONDSTORE)."""
        parts = [b"UID %d" % uid] if uid is not None else []
        parts.append(b"FLAGS (%s)" % " ".join(flags).encode())
        if self.condstore:
            parts.append(b"MODSEQ (%d)" % modseq)
        return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))

    def enable_condstore(self) -> None:
        """RFC 7162 3.1: the first CONDSTORE-enabling command turns it on for the rest of the session."""
        if not self.condstore:
            self.condstore = True
            if self.selected is not None:
                # RFC 7162 3.1.2.1: a command that enables CONDSTORE while a folder is selected tells the
                # folder's highest mod-sequence.
                self.send(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % self.selected.modseq)

    def send_flag_lists(self) -> None:
        """FLAGS and PERMANENTFLAGS for the selected folder (RFC 3501 7.2.6, 7.1)."""
        selected = self.selected
        assert selected is not None
        keywords = "".join(" " + k for k in selected.keywords)
        self.send(f"* FLAGS ({SYSTEM_FLAGS}{keywords})\r\n".encode())
        permanent = "" if selected.readonly else f"{SYSTEM_FLAGS}{keywords} \\*"
        self.send(f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted\r\n".encode())

    def announce_keywords(self, flags: list[str]) -> None:
        """Before a FETCH shows a keyword the client was not told of, send the new FLAGS and PERMANENTFLAGS
        (RFC 3501 7.2.6: FLAGS lists the flags the folder uses; clients build their flag lists from it)."""
        selected = self.selected
        if selected is None:
            return
        new = [f for f in flags if not f.startswith("\\") and f not in selected.keywords]
        if new:
            selected.keywords.extend(dict.fromkeys(new))
            self.send_flag_lists()

    def _send_expunges(self, selected: Selected, gone: list[int]) -> None:
        """Remove `gone` (ascending UIDs) from the view and tell the client: VANISHED once QRESYNC is on
        (RFC 7162 3.2.10), else one EXPUNGE each, highest first, so every number is valid when applied."""
        gone = [uid for uid in gone if selected.seq_of(uid) is not None]
        if not gone:
            return
        if self.qresync:
            selected.uids = views.without(selected.own_uids(), set(gone))
            self.send(b"* VANISHED %s\r\n" % sequence.compress(gone).encode())
        else:
            for uid in reversed(gone):
                seq = selected.seq_of(uid)
                assert seq is not None
                del selected.own_uids()[seq - 1]
                self.send(b"* %d EXPUNGE\r\n" % seq)
        for uid in gone:
            selected.recent.discard(uid)
            selected.pending_gone.pop(uid, None)
            selected.told.pop(uid, None)
            selected.told_modseq.pop(uid, None)

    def expunged(self, uids: list[int]) -> None:
        """Report messages this session removed (EXPUNGE, MOVE)."""
        if self.selected is not None:
            self._send_expunges(self.selected, uids)

    def select(self, snapshot: store.Snapshot, readonly: bool) -> Selected:
        # \\Recent (RFC 3501 2.3.2): the store handed this session the messages no other session had.
        recent = set(snapshot.uids[bisect.bisect_left(snapshot.uids, snapshot.first_recent_uid) :])
        if self.rev2:
            recent.clear()  # no \\Recent in IMAP4rev2 (RFC 9051 Appendix E); SEARCH RECENT matches nothing
        self.selected = Selected(
            snapshot.mailbox_id,
            snapshot.name,
            readonly,
            snapshot.uidvalidity,
            snapshot.highestmodseq,
            snapshot.uids,
            recent,
            keywords=list(snapshot.keywords),
        )
        self._drain_changes()
        self.folder_changed = False
        self.conn.state = State.SELECTED
        return self.selected

    def unselect(self) -> None:
        self.selected = None
        self.conn.state = State.AUTHENTICATED

    async def start_tls(self, context: ssl.SSLContext) -> None:
        await self.flush()
        # Bytes pipelined after STARTTLS were sent in plaintext and must not be taken as commands (RFC 3501
        # 6.2.1; the injection attack of CVE-2011-0411). The stream keeps no API to drop its buffer.
        self.conn.discard_buffer()
        self.reader._buffer.clear()  # type: ignore[attr-defined]
        await self.writer.start_tls(context)
        self.tls = True
