"""Importing every folder of a remote IMAP account: flags, keywords, internal dates and bytes exactly.

Resumable: each stored message is recorded by (source, remote folder, UIDVALIDITY, UID) in the transaction
that stores it (`actions.import_messages`), and each folder's listing is compared with those records, so an
import killed at any point and run again fetches only what is missing, and never stores a message twice. A
folder whose UIDVALIDITY changed is a new folder as far as the records go (RFC 3501 2.3.1.1).

Memory is bounded: messages are fetched in batches of at most `BATCH_MESSAGES` or `BATCH_BYTES` (by the sizes
the server announced), and a literal over the message size limit is refused before it is read. A dropped
connection is re-opened up to `retries` times in a row; the records make the retry pick up where it stopped.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from imapd import mutf7
from mailboxes import actions
from mailboxes.actions.importing import Incoming, RemoteKey, import_messages
from mailboxes.models import Account, Mailbox, Role
from transfer import archive
from transfer.flags import Skipped, normalise
from transfer.imap_response import Folder, ResponseError
from transfer.imap_source import DROPPED, Endpoint, LiteralTooLarge, Session, SourceError
from transfer.models import ImportedMessage

BATCH_MESSAGES = 50
BATCH_BYTES = 8 * 1024 * 1024
# RFC 6154 special-use attributes -> our folders of that role, so "[Gmail]/Sent Mail" lands in Sent.
SPECIAL_USE = {
    "\\sent": Role.SENT,
    "\\drafts": Role.DRAFTS,
    "\\trash": Role.TRASH,
    "\\junk": Role.JUNK,
    "\\archive": Role.ARCHIVE,
}


@dataclass
class Report(archive.Report):
    """An archive import's report (messages stored per local folder, what was skipped), and more."""

    already: int = 0  # messages found imported by an earlier run
    reconnects: int = 0


@dataclass
class Progress:
    """How far a run has come, for a page that shows it: folders, and messages dealt with (stored, found
    imported before, or skipped) against all the remote folders hold."""

    folders_total: int = 0
    folders_done: int = 0
    folder: str = ""  # the local folder being imported
    messages_total: int = 0
    messages_done: int = 0


def decode_name(folder: Folder) -> str:
    """Our "/"-separated name of a remote folder (modified UTF-7 decoded, RFC 3501 5.1.3)."""
    text = mutf7.decode(folder.name.decode("ascii"))
    if text.upper() == "INBOX":
        return "INBOX"
    parts = text.split(folder.delimiter) if folder.delimiter else [text]
    return "/".join(parts)


class Importer:
    def __init__(
        self,
        account: Account,
        endpoint: Endpoint,
        *,
        max_size: int,
        max_rate: float = 0.0,
        retries: int = 5,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.account = account
        self.endpoint = endpoint
        self.max_size = max_size
        self.max_rate = max_rate
        self.retries = retries
        self.progress = progress
        self.report = Report()
        self.done = Progress()
        self.session: Session | None = None
        self.started = time.monotonic()
        self.fetched = 0

    def _session(self) -> Session:
        if self.session is None:
            self.session = Session(self.endpoint, self.max_size)
        return self.session

    def _drop(self) -> None:
        if self.session is not None:
            with contextlib.suppress(OSError):
                self.session.client.shutdown()
            self.session = None

    def run(self) -> Report:
        """Import every folder; a dropped connection is retried (in a row, `retries` times at most)."""
        done: set[bytes] = set()
        failures = 0
        while True:
            try:
                folders = self._session().folders()
                if not self.done.folders_total:
                    self._plan(folders)
                for folder in folders:
                    if folder.name not in done:
                        self._folder(folder)
                        done.add(folder.name)
                        self.done.folders_done = len(done)
                        self._tell()
                        failures = 0
                break
            except ssl.SSLCertVerificationError as error:  # no reconnect will change that
                raise SourceError(f"the server's certificate is not trusted: {error.verify_message}") from None
            except DROPPED as error:
                self._drop()
                failures += 1
                if failures > self.retries:
                    raise SourceError(f"gave up after {self.retries} reconnects: {error}") from None
                self.report.reconnects += 1
                time.sleep(0.5 * 2 ** (failures - 1))  # 0.5 s, then 1, 2, 4, 8: a server restart fits
        if self.session is not None:
            self.session.close()
        return self.report

    def _plan(self, folders: list[Folder]) -> None:
        """Count the remote messages up front (one STATUS per folder), so progress has a total."""
        session = self._session()
        self.done.folders_total = len(folders)
        for folder in folders:
            if not {"\\noselect", "\\nonexistent"} & folder.attributes:
                with contextlib.suppress(SourceError):
                    self.done.messages_total += session.count(folder.name)
        self._tell()

    def _tell(self) -> None:
        if self.progress:
            skipped = sum(" UID " in item.where for item in self.report.skipped)  # messages, not whole folders
            self.done.messages_done = self.report.total + self.report.already + skipped
            self.progress(self.done)

    def _local_folder(self, folder: Folder, name: str) -> Mailbox:
        role = next((SPECIAL_USE[a] for a in folder.attributes if a in SPECIAL_USE), None)
        if role is not None and name != "INBOX":
            existing = Mailbox.objects.filter(account=self.account, role=role).first()
            if existing is not None:
                return existing
        name = actions.normalise_folder_name(name)
        return Mailbox.objects.filter(account=self.account, name=name).first() or actions.create_mailbox(
            self.account, name
        )

    def _folder(self, folder: Folder) -> None:
        label = folder.name.decode("ascii", "replace")
        try:
            name = decode_name(folder)
            if {"\\noselect", "\\nonexistent"} & folder.attributes:
                return
            mailbox = self._local_folder(folder, name)
        except (ValueError, actions.ServiceError) as error:  # MUTF7Error is a ValueError
            self.report.skipped.append(Skipped(label, f"folder not imported: {error}"))
            return
        session = self._session()
        try:
            uidvalidity, count = session.examine(folder.name)
        except SourceError as error:
            self.report.skipped.append(Skipped(label, f"folder not imported: {error}"))
            return
        self.report.folders.setdefault(mailbox.name, 0)
        self.done.folder = mailbox.name
        self._tell()
        if count == 0:
            return
        try:
            sizes = session.sizes()
        except SourceError as error:
            self.report.skipped.append(Skipped(label, f"folder not imported: {error}"))
            return
        imported = set(
            ImportedMessage.objects.filter(
                account=self.account, source=self.endpoint.source, folder=label, uidvalidity=uidvalidity
            ).values_list("uid", flat=True)
        )
        self.report.already += len(imported & sizes.keys())
        wanted: list[int] = []
        for uid in sorted(sizes.keys() - imported):
            if sizes[uid] > self.max_size:
                self.report.skipped.append(Skipped(f"{label} UID {uid}", f"larger than {self.max_size} bytes"))
            else:
                wanted.append(uid)
        self._tell()
        batch: list[int] = []
        batch_bytes = 0
        for uid in wanted:
            if batch and (len(batch) >= BATCH_MESSAGES or batch_bytes + sizes[uid] > BATCH_BYTES):
                self._batch(folder, label, uidvalidity, mailbox, batch)
                batch, batch_bytes = [], 0
            batch.append(uid)
            batch_bytes += sizes[uid]
        if batch:
            self._batch(folder, label, uidvalidity, mailbox, batch)

    def _batch(self, folder: Folder, label: str, uidvalidity: int, mailbox: Mailbox, uids: list[int]) -> None:
        try:
            fetched = self._session().fetch(uids)
        except (OSError, EOFError, imaplib.IMAP4.abort):
            raise  # the connection dropped: `run` reconnects and picks up where the records say
        except (LiteralTooLarge, imaplib.IMAP4.error, ResponseError, SourceError) as error:
            # Something in this batch cannot be fetched: find it by fetching one at a time, and skip it alone.
            out_of_step = isinstance(error, (LiteralTooLarge, imaplib.IMAP4.error))
            if out_of_step:
                self._reselect(folder)
            if len(uids) > 1:
                for uid in uids:
                    self._batch(folder, label, uidvalidity, mailbox, [uid])
                return
            reason = (
                f"the server sent more than {self.max_size} bytes for it"
                if isinstance(error, LiteralTooLarge)
                else f"the server's answer could not be used: {error}"
            )
            self.report.skipped.append(Skipped(f"{label} UID {uids[0]}", reason))
            return
        self._pace(len(fetched))
        by_uid = {item.uid: item for item in fetched if item.uid in set(uids)}
        for uid in uids:
            if uid not in by_uid:
                self.report.skipped.append(Skipped(f"{label} UID {uid}", "the server did not return it"))
        incoming = [
            Incoming(
                item.body or b"",
                normalise(item.flags),
                item.internal_date,
                RemoteKey(self.endpoint.source, label, uidvalidity, item.uid),
            )
            for item in (by_uid[uid] for uid in uids if uid in by_uid)
        ]
        for item, outcome in zip(incoming, import_messages(self.account, mailbox.pk, incoming), strict=True):
            assert item.remote is not None
            if outcome is None:
                self.report.folders[mailbox.name] += 1
            elif outcome == "imported before":
                self.report.already += 1
            else:
                self.report.skipped.append(Skipped(f"{label} UID {item.remote.uid}", outcome))
        self._tell()

    def _reselect(self, folder: Folder) -> None:
        """A new connection, the folder selected again: the old one is out of step with the server."""
        self._drop()
        self.report.reconnects += 1
        self._session().examine(folder.name)

    def _pace(self, count: int) -> None:
        """At most `max_rate` messages per second on average, to spare the remote server."""
        self.fetched += count
        if self.max_rate > 0:
            ahead = self.fetched / self.max_rate - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(ahead)
