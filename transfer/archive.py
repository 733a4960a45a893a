"""Exporting an account's folders to mbox or Maildir, and importing them back, through the store's actions.

With a folder named, the path is that one folder (an mbox file, or a maildir); without, it is the whole
account: a directory of `<folder>.mbox` files (subfolders in subdirectories), or a Maildir++ tree. Messages
are read from the database 8 MiB at a time and written as they come; imports are stored in batches of
bounded size, so memory stays bounded by the largest message.
"""

from __future__ import annotations

import datetime
import io
import re
import socket
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from mailboxes import actions
from mailboxes.actions.importing import Incoming, import_messages
from mailboxes.models import Account, Mailbox, Message
from mailcore.crlf import to_crlf
from transfer import maildir, mbox
from transfer.flags import Item, Skipped

FORMATS = ("mbox", "maildir")
MBOX_SUFFIX = ".mbox"
_BATCH_MESSAGES = 100
_BATCH_BYTES = 8 * 1024 * 1024
_READ_BYTES = 8 * 1024 * 1024  # message bytes loaded from the database at once (or one bigger message)
_RETURN_PATH = re.compile(rb"(?im)^Return-Path:[ \t]*<([^>\r\n]*)>")


@dataclass
class Report:
    folders: dict[str, int] = field(default_factory=dict)  # folder -> messages exported or imported
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.folders.values())

    def lines(self) -> list[str]:
        out = [f"{name}: {count}" for name, count in self.folders.items()]
        out += [f"skipped {item.where}: {item.reason}" for item in self.skipped]
        return out


def _flags(row: Mapping[str, Any]) -> list[str]:
    names = [f"\\{column.capitalize()}" for column in actions.SYSTEM_FLAGS.values() if row[column]]
    return names + row["keywords"].split()


def _items(mailbox: Mailbox) -> Iterator[Item]:
    """The folder's messages in UID order, their bodies loaded at most `_READ_BYTES` (or one message) at once."""
    batch: list[int] = []
    size = 0
    for pk, message_size in Message.objects.filter(mailbox=mailbox).order_by("uid").values_list("pk", "size"):
        if batch and size + message_size > _READ_BYTES:
            yield from _load(batch)
            batch, size = [], 0
        batch.append(pk)
        size += message_size
    yield from _load(batch)


def _load(ids: list[int]) -> Iterator[Item]:
    rows = (
        Message.objects.filter(pk__in=ids)
        .order_by("uid")
        .values("seen", "answered", "flagged", "deleted", "draft", "keywords", "internal_date", "body__raw")
    )
    for row in rows:
        raw = bytes(row["body__raw"])
        sender = _RETURN_PATH.search(raw[:8192])
        yield Item(raw, _flags(row), row["internal_date"], sender.group(1).decode("utf-8", "replace") if sender else "")


def _mailboxes(account: Account, folder: str | None) -> list[Mailbox]:
    folders = Mailbox.objects.filter(account=account).order_by("name")
    if folder is not None:
        folders = folders.filter(name=actions.normalise_folder_name(folder))
        if not folders.exists():
            raise actions.NotFound(f"{account.address} has no folder {folder!r}")
    return list(folders)


def export(account: Account, fmt: str, out: Path, *, folder: str | None = None) -> Report:
    """Write the account's folders (or one) to `out`."""
    report = Report()
    mailboxes = _mailboxes(account, folder)
    if fmt == "mbox":
        for mailbox in mailboxes:
            path = out if folder is not None else out / (mailbox.name + MBOX_SUFFIX)
            path.parent.mkdir(parents=True, exist_ok=True)
            count = 0
            with open(path, "wb") as stream:
                for item in _items(mailbox):
                    mbox.write(stream, item)
                    count += 1
            report.folders[mailbox.name] = count
    else:
        writer = maildir.Writer(out, socket.gethostname())
        for mailbox in mailboxes:
            target = "INBOX" if folder is not None else mailbox.name
            writer.folder(target)
            count = 0
            for item in _items(mailbox):
                writer.write(target, item)
                count += 1
            report.folders[mailbox.name] = count
        writer.close()
        report.skipped.extend(writer.dropped)
    return report


class _Sink(io.RawIOBase):
    """An unseekable stream that keeps what is written until taken (zipfile then writes data descriptors)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        self.chunks.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks, self.size = [], 0
        return data


def mbox_zip(account: Account, *, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """The account as a zip file of `<folder>.mbox` files, produced piece by piece (about `chunk` bytes each)
    while the folders are read, so an archive of any size streams in bounded memory."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for mailbox in _mailboxes(account, None):
            with archive.open(mailbox.name + MBOX_SUFFIX, "w", force_zip64=True) as entry:
                for item in _items(mailbox):
                    message = io.BytesIO()
                    mbox.write(message, item)
                    entry.write(message.getvalue())
                    if sink.size >= chunk:
                        yield sink.take()
    yield sink.take()


def _sources(fmt: str, path: Path, folder: str | None, max_size: int) -> Iterator[tuple[str, Iterable] | Skipped]:
    """(folder name, its items) for each folder an archive holds."""
    if fmt == "mbox":
        if path.is_file():
            yield folder or path.name.removesuffix(MBOX_SUFFIX), _open_mbox(path, max_size)
            return
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = file.relative_to(path).as_posix()
            if _looks_like_mbox(file):
                # Thunderbird keeps subfolders of "A" in "A.sbd/".
                name = relative.removesuffix(MBOX_SUFFIX).replace(".sbd/", "/")
                yield name, _open_mbox(file, max_size)
            elif relative.endswith(MBOX_SUFFIX) and file.stat().st_size:
                yield Skipped(str(file), "not an mbox file: it does not begin with a 'From ' line")
        return
    if folder is not None:
        yield folder, maildir.read(path, max_size=max_size)
        return
    for found in maildir.folders(path):
        if isinstance(found, Skipped):
            yield found
        else:
            yield found[0], maildir.read(found[1], max_size=max_size)


def _looks_like_mbox(file: Path) -> bool:
    with open(file, "rb") as stream:
        return mbox.FROM_LINE.match(stream.readline(1024)) is not None


def _open_mbox(path: Path, max_size: int) -> Iterator[Item | Skipped]:
    with open(path, "rb") as stream:
        try:
            yield from mbox.read(stream, max_size=max_size, name=str(path))
        except mbox.MboxError as error:
            yield Skipped(str(path), str(error))


def _header_date(raw: bytes) -> datetime.datetime | None:
    match = re.search(rb"(?im)^Date:[ \t]*(.*)$", raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
    if not match:
        return None
    try:
        when = parsedate_to_datetime(match.group(1).decode("latin-1").strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _folder(account: Account, name: str) -> Mailbox:
    name = actions.normalise_folder_name(name)
    existing = Mailbox.objects.filter(account=account, name=name).first()
    return existing or actions.create_mailbox(account, name)


def _store(account: Account, mailbox: Mailbox, batch: list[tuple[str, Incoming]], report: Report) -> None:
    results = import_messages(account, mailbox.pk, [incoming for _, incoming in batch])
    for (where, _), reason in zip(batch, results, strict=True):
        if reason is None:
            report.folders[mailbox.name] += 1
        else:
            report.skipped.append(Skipped(where, reason))


def _import_folder(
    account: Account, mailbox: Mailbox, name: str, items: Iterable, report: Report, *, crlf: bool, date_from: str
) -> None:
    batch: list[tuple[str, Incoming]] = []
    size = 0
    for number, item in enumerate(items, 1):
        if isinstance(item, Skipped):
            report.skipped.append(item)
            continue
        raw = item.raw
        if crlf and b"\r" not in raw:
            raw = to_crlf(raw)
        when = _header_date(raw) if date_from == "header" else item.internal_date
        batch.append((f"{name} message {number}", Incoming(raw, item.flags, when or item.internal_date)))
        size += len(raw)
        if len(batch) >= _BATCH_MESSAGES or size >= _BATCH_BYTES:
            _store(account, mailbox, batch, report)
            batch, size = [], 0
    if batch:
        _store(account, mailbox, batch, report)


def import_archive(
    account: Account,
    fmt: str,
    path: Path,
    *,
    folder: str | None = None,
    max_size: int,
    crlf: bool = False,
    date_from: str = "archive",
) -> Report:
    """Store an archive's messages in the account, folder by folder (created when missing).

    Bytes are stored exactly as the archive has them (so a round trip is exact, whatever line endings a
    message had); with `crlf`, messages whose lines all end in a bare LF (Unix mbox and Maildir files) are
    stored with CRLF, as mail travels (RFC 5322 2.3).
    `date_from="header"` takes the internal date from the Date field instead of the archive.
    """
    report = Report()
    for source in _sources(fmt, path, folder, max_size):
        if isinstance(source, Skipped):
            report.skipped.append(source)
            continue
        name, items = source
        try:
            mailbox = _folder(account, name)
        except actions.InvalidName as error:
            report.skipped.append(Skipped(name, str(error)))
            continue
        report.folders.setdefault(mailbox.name, 0)
        _import_folder(account, mailbox, name, items, report, crlf=crlf, date_from=date_from)
    return report
