"""Maildir (the qmail layout, with the Maildir++ folders Dovecot and Courier use): reader and writer.

A message is one file in `cur/` (or `new/`, not yet seen by a client); its name ends in an info suffix
`:2,<letters>`: D draft, F flagged, P passed, R replied, S seen, T trashed (deleted), and lower-case letters
for keywords, named in the folder's `dovecot-keywords` file ("<n> <keyword>" lines, letter `a` + n). The
internal date is the file's modification time, to the nanosecond. Folders are directories `.<name>` under the
root (the root holds INBOX), the hierarchy written with "." and each name in modified UTF-7 (RFC 3501 5.1.3);
a "." inside one name is written "&AC4-", its modified UTF-7 form, which any decoder reads back.

The reader takes any file name: one without an info suffix, or with unknown letters, still imports (with the
flags it can read); hidden files (leading ".") are ignored, as the Maildir specification asks.
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

from imapd import mutf7
from transfer.flags import Item, Skipped, normalise

_LETTERS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
_FLAG_LETTERS = {flag.lower(): letter for letter, flag in _LETTERS.items()}
KEYWORDS_FILE = "dovecot-keywords"
MAX_KEYWORDS = 26  # letters a-z
# "." in modified UTF-7's base64 form; our decoder (strict, like RFC 3501's encoder rule) is handed the pieces.
_DOT = "&AC4-"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_INFO = re.compile(r"[:!;]2,(?P<letters>[A-Za-z]*)$")  # "!" and ";" where ":" is not allowed in file names


def folder_dir(root: Path, name: str) -> Path:
    """Where a folder lives: the root for INBOX, `.A.B` for "A/B"."""
    if name.upper() == "INBOX":
        return root
    parts = [mutf7.encode(part).replace(".", _DOT) for part in name.split("/")]
    return root / ("." + ".".join(parts))


def folder_name(directory: str) -> str:
    """The folder name of a Maildir++ directory name (`.A.B` -> "A/B"); raises mutf7.MUTF7Error."""
    return "/".join(".".join(mutf7.decode(piece) for piece in part.split(_DOT)) for part in directory[1:].split("."))


def is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def folders(root: Path) -> Iterator[tuple[str, Path] | Skipped]:
    """(folder name, directory) of every maildir under a Maildir++ root, INBOX (the root) first."""
    if is_maildir(root):
        yield "INBOX", root
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(".") or entry.name in {".", ".."} or not entry.is_dir():
            continue
        if not is_maildir(entry):
            continue
        try:
            yield folder_name(entry.name), entry
        except mutf7.MUTF7Error:
            yield Skipped(str(entry), "the folder name is not valid modified UTF-7")


def _keywords(directory: Path) -> dict[str, str]:
    """Keyword letter -> keyword, from the folder's dovecot-keywords file."""
    try:
        text = (directory / KEYWORDS_FILE).read_text("utf-8", "replace")
    except OSError:
        return {}
    letters: dict[str, str] = {}
    for line in text.splitlines():
        number, _, keyword = line.partition(" ")
        if number.isdigit() and int(number) < MAX_KEYWORDS and keyword.strip():
            letters[chr(ord("a") + int(number))] = keyword.strip()
    return letters


def flags_of(file_name: str, keywords: dict[str, str]) -> list[str]:
    """The flags a file name's info suffix gives; unknown letters are ignored."""
    info = _INFO.search(file_name)
    if not info:
        return []
    flags = [_LETTERS[ch] for ch in info["letters"] if ch in _LETTERS]
    flags += [keywords[ch] for ch in info["letters"] if ch in keywords]
    return normalise(flags)


def read(directory: Path, *, max_size: int) -> Iterator[Item | Skipped]:
    """The messages of one maildir, oldest first (by modification time, then name)."""
    keywords = _keywords(directory)
    entries: list[tuple[int, str, Path, bool]] = []
    for sub in ("cur", "new"):
        try:
            listing = list(os.scandir(directory / sub))
        except FileNotFoundError:
            continue
        for entry in listing:
            if entry.name.startswith("."):
                continue
            if not entry.is_file(follow_symlinks=False):
                yield Skipped(entry.path, "not a regular file")
                continue
            entries.append((entry.stat().st_mtime_ns, entry.name, Path(entry.path), sub == "new"))
    for mtime_ns, name, path, new in sorted(entries):
        size = path.stat().st_size
        if size > max_size:
            yield Skipped(str(path), f"larger than {max_size} bytes")
            continue
        try:
            raw = path.read_bytes()
        except OSError as error:
            yield Skipped(str(path), f"unreadable: {error.strerror or error}")
            continue
        when = _EPOCH + datetime.timedelta(microseconds=mtime_ns // 1000)
        yield Item(raw, [] if new else flags_of(name, keywords), when)


class Writer:
    """Writes messages into a Maildir++ tree; `close()` writes each folder's keyword file."""

    def __init__(self, root: Path, hostname: str) -> None:
        self.root = root
        # Maildir names may not contain "/" or ":" (written as octal escapes, as qmail's documentation says).
        self.hostname = hostname.replace("/", "\\057").replace(":", "\\072") or "localhost"
        self.counter = itertools.count(1)
        self.keywords: dict[Path, list[str]] = {}
        self.dropped: list[Skipped] = []

    def folder(self, name: str) -> Path:
        directory = folder_dir(self.root, name)
        for sub in ("cur", "new", "tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.keywords.setdefault(directory, list(_keywords(directory).values()))
        return directory

    def _letters(self, directory: Path, flags: list[str], where: str) -> str:
        lowered = {flag.lower() for flag in flags}
        letters = [letter for flag, letter in _FLAG_LETTERS.items() if flag in lowered]
        known = self.keywords[directory]
        for keyword in (flag for flag in normalise(flags) if not flag.startswith("\\")):
            if keyword not in known:
                if len(known) == MAX_KEYWORDS:
                    self.dropped.append(Skipped(where, f"keyword {keyword!r}: a maildir holds {MAX_KEYWORDS}"))
                    continue
                known.append(keyword)
            letters.append(chr(ord("a") + known.index(keyword)))
        return "".join(sorted(letters))

    def write(self, folder: str, item: Item) -> Path:
        directory = self.folder(folder)
        when = item.internal_date or datetime.datetime.now(datetime.UTC)
        micros = (when - _EPOCH) // datetime.timedelta(microseconds=1)
        seconds = micros // 1_000_000  # floor, also before 1970
        unique = f"{seconds}.M{micros % 1_000_000}P{os.getpid()}Q{next(self.counter)}.{self.hostname}"
        name = f"{unique},S={len(item.raw)}:2,{self._letters(directory, item.flags, unique)}"
        temporary = directory / "tmp" / unique
        with open(temporary, "xb") as out:
            out.write(item.raw)
        mtime_ns = micros * 1000
        os.utime(temporary, ns=(mtime_ns, mtime_ns))
        target = directory / "cur" / name
        os.replace(temporary, target)
        return target

    def close(self) -> None:
        for directory, keywords in self.keywords.items():
            if keywords:
                lines = "".join(f"{number} {keyword}\n" for number, keyword in enumerate(keywords))
                (directory / KEYWORDS_FILE).write_text(lines, "utf-8")
