"""Maildir: info suffixes, keyword files, modification times as internal dates, odd names, Maildir++ folders."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from transfer import maildir
from transfer.flags import Item, Skipped

WHEN = datetime.datetime(2023, 6, 30, 12, 0, 1, 123456, tzinfo=datetime.UTC)


def test_writer_names_flags_keywords_and_times(tmp_path: Path) -> None:
    writer = maildir.Writer(tmp_path, "mail/host:1")
    path = writer.write("INBOX", Item(b"a\r\n", ["\\Seen", "\\Answered", "later", "$Junk"], WHEN))
    writer.write("INBOX", Item(b"b\r\n", ["$Junk"], WHEN))
    writer.close()
    assert path.parent == tmp_path / "cur"
    assert path.name.startswith(f"{int(WHEN.timestamp())}.M123456P{os.getpid()}Q1.mail\\057host\\0721,S=3:2,")
    assert path.name.endswith(":2,RSab")
    assert path.read_bytes() == b"a\r\n"
    assert path.stat().st_mtime_ns == int(WHEN.timestamp()) * 10**9 + 123456000
    assert (tmp_path / "dovecot-keywords").read_text() == "0 later\n1 $Junk\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cur", "dovecot-keywords", "new", "tmp"]


def test_round_trip(tmp_path: Path) -> None:
    before_1970 = datetime.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=datetime.UTC)
    items = [
        Item(b"one\r\n", ["\\Seen", "\\Flagged", "\\Deleted", "\\Draft", "kw"], WHEN),
        Item(b"two\n", [], before_1970),
        Item(b"", ["\\Answered"], WHEN + datetime.timedelta(seconds=1)),
    ]
    writer = maildir.Writer(tmp_path, "h")
    for item in items:
        writer.write("Work/Projects 2024.1", item)
    writer.close()
    ((name, directory),) = list(maildir.folders(tmp_path))
    assert name == "Work/Projects 2024.1"
    assert directory.name == ".Work.Projects 2024&AC4-1"
    back = list(maildir.read(directory, max_size=100))
    assert back == [items[1], items[0], items[2]]  # oldest first


def test_folder_names_are_modified_utf7(tmp_path: Path) -> None:
    writer = maildir.Writer(tmp_path, "h")
    writer.folder("INBOX")
    writer.folder("Entwürfe/A&B")
    assert (tmp_path / ".Entw&APw-rfe.A&-B" / "cur").is_dir()
    (tmp_path / ".bad&Jjo").mkdir()
    (tmp_path / ".bad&Jjo" / "new").mkdir()
    (tmp_path / ".not-a-maildir").mkdir()
    found = list(maildir.folders(tmp_path))
    assert found[0] == ("INBOX", tmp_path)
    assert ("Entwürfe/A&B", tmp_path / ".Entw&APw-rfe.A&-B") in found
    assert Skipped(str(tmp_path / ".bad&Jjo"), "the folder name is not valid modified UTF-7") in found
    assert len(found) == 3


def test_odd_names_and_files(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "dovecot-keywords").write_text("0 alpha\nbroken line\n30 beyond\n1 beta\n")
    files = {
        "cur/plain-name-without-info": (b"1", []),
        "cur/x:2,SZab": (b"2", ["\\Seen", "alpha", "beta"]),  # Z unknown, ignored
        "cur/y!2,F": (b"3", ["\\Flagged"]),  # "!" where ":" is not allowed
        "cur/z:1,experimental": (b"4", []),
        "new/arrived:2,S": (b"5", []),  # new mail has no flags yet
    }
    for number, (name, (raw, _)) in enumerate(files.items()):
        (tmp_path / name).write_bytes(raw)
        os.utime(tmp_path / name, ns=(number * 10**9, number * 10**9))
    (tmp_path / "cur" / ".hidden:2,S").write_bytes(b"ignored")
    (tmp_path / "cur" / "a-directory").mkdir()
    (tmp_path / "cur" / "too-big").write_bytes(b"x" * 11)
    os.utime(tmp_path / "cur" / "too-big", ns=(10**10, 10**10))
    got = list(maildir.read(tmp_path, max_size=10))
    assert Skipped(str(tmp_path / "cur" / "a-directory"), "not a regular file") in got
    assert Skipped(str(tmp_path / "cur" / "too-big"), "larger than 10 bytes") in got
    items = [item for item in got if isinstance(item, Item)]
    assert [(item.raw, item.flags) for item in items] == list(files.values())
    assert items[1].internal_date == datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("name", "flags"),
    [("a:2,", []), ("a:2,TDRFS", ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]), ("a:2,P", [])],
)
def test_info_letters(name: str, flags: list[str]) -> None:
    assert maildir.flags_of(name, {}) == flags


def test_more_than_26_keywords_are_reported(tmp_path: Path) -> None:
    writer = maildir.Writer(tmp_path, "h")
    writer.write("INBOX", Item(b"m", [f"k{n}" for n in range(27)], WHEN))
    writer.close()
    assert writer.dropped == [Skipped(writer.dropped[0].where, "keyword 'k26': a maildir holds 26")]
