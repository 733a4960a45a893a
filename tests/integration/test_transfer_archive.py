"""exportmail and importmail: mbox and Maildir round trips between two accounts, and what import refuses."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mailboxes import actions
from mailboxes.models import Mailbox, Message
from tests.transfer_support import FOLDERS, contents, fill, odd_messages

pytestmark = pytest.mark.django_db


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["mbox", "maildir"])
def test_account_round_trip_is_exact(make_account, tmp_path: Path, fmt: str) -> None:
    source = make_account("from@example.test")
    fill(source, 60)
    target = make_account("to@other.test")
    exported = run("exportmail", source.address, "--format", fmt, "--out", str(tmp_path / "archive"))
    assert "exported 60 messages from 10 folders" in exported
    imported = run("importmail", target.address, "--format", fmt, "--in", str(tmp_path / "archive"))
    assert imported.endswith("imported 60 messages, skipped 0\n")
    # mbox carries the internal date in its From_ line, to the second (IMAP's INTERNALDATE precision).
    whole = fmt == "mbox"
    assert contents(target, whole_seconds=whole) == contents(source, whole_seconds=whole)
    assert sorted(contents(target)) == sorted(FOLDERS)
    # Imported messages are stored like any other: parsed columns, quota charged.
    target.refresh_from_db()
    source.refresh_from_db()
    assert target.used_bytes == source.used_bytes
    assert Message.objects.filter(account=target, subject="big").count() == 1


@pytest.mark.parametrize("fmt", ["mbox", "maildir"])
def test_one_folder_round_trip_keeps_uid_order_for_mbox(make_account, tmp_path: Path, fmt: str) -> None:
    source = make_account("from@example.test")
    fill(source, 40)
    target = make_account("to@other.test")
    path = tmp_path / ("work.mbox" if fmt == "mbox" else "work")
    run("exportmail", source.address, "--format", fmt, "--out", str(path), "--folder", "Work/Projects")
    run("importmail", target.address, "--format", fmt, "--in", str(path), "--folder", "Copied/Projects")
    got = contents(target, whole_seconds=True)["Copied/Projects"]
    assert got == contents(source, whole_seconds=True)["Work/Projects"]
    assert len(got) == 4
    if fmt == "mbox":
        order = list(
            Message.objects.filter(mailbox__account=target, mailbox__name="Copied/Projects")
            .order_by("uid")
            .values_list("body__raw", flat=True)
        )
        expected = Message.objects.filter(mailbox__account=source, mailbox__name="Work/Projects").order_by("uid")
        assert [bytes(raw) for raw in order] == [bytes(m.body.raw) for m in expected]


def test_unix_mbox_kept_as_is_or_given_crlf(make_account, tmp_path: Path) -> None:
    account = make_account("u@example.test")
    path = tmp_path / "unix"
    path.write_bytes(
        b"From a@b Mon Jan  1 10:00:00 2024\nSubject: unix\n\n>From x\nline\n\n"
        b"From a@b Mon Jan  1 10:00:01 2024\nSubject: has crlf\r\n\r\nkept\n\n"
    )
    run("importmail", account.address, "--format", "mbox", "--in", str(path), "--folder", "Unix", "--crlf")
    run("importmail", account.address, "--format", "mbox", "--in", str(path), "--folder", "Kept")
    stored = {
        name: [bytes(m.body.raw) for m in Message.objects.filter(mailbox__name=name).order_by("uid")]
        for name in ("Unix", "Kept")
    }
    assert stored["Unix"] == [b"Subject: unix\r\n\r\nFrom x\r\nline\r\n", b"Subject: has crlf\r\n\r\nkept\n"]
    assert stored["Kept"] == [b"Subject: unix\n\nFrom x\nline\n", b"Subject: has crlf\r\n\r\nkept\n"]


def test_dates_from_headers(make_account, tmp_path: Path) -> None:
    account = make_account("u@example.test")
    path = tmp_path / "one.mbox"
    path.write_bytes(b"From a@b Mon Jan  1 10:00:00 2024\r\nDate: Tue, 02 Feb 2021 03:04:05 +0200\r\n\r\nx\r\n\n")
    run("importmail", account.address, "--format", "mbox", "--in", str(path), "--date-from", "header")
    message = Message.objects.get(mailbox__name="one")
    assert message.internal_date.isoformat() == "2021-02-02T01:04:05+00:00"


def test_skips_are_reported_and_the_rest_imported(make_account, tmp_path: Path, settings) -> None:
    settings.MAILSITE_MAX_MESSAGE_SIZE = 20_000
    account = make_account("u@example.test", quota_bytes=0)
    deep = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level) for level in range(150)
    )
    archive = tmp_path / "mixed"
    (archive / "Folder").mkdir(parents=True)
    (archive / "Folder" / "Sub.mbox").write_bytes(
        b"From a@b Mon Jan  1 10:00:00 2024\nSubject: ok\n\nfine\n\n"
        b"From a@b Mon Jan  1 10:00:00 2024\nSubject: big\n\n" + b"x" * 30_000 + b"\n\n"
        b"From a@b Mon Jan  1 10:00:00 2024\n" + deep + b"\n"
    )
    (archive / "bad*name.mbox").write_bytes(b"From a@b Mon Jan  1 10:00:00 2024\n\nx\n\n")
    (archive / "notes.mbox").write_bytes(b"not an mbox\n")
    output = run("importmail", account.address, "--format", "mbox", "--in", str(archive))
    assert "Folder/Sub: 1" in output
    assert "skipped " + str(archive / "Folder" / "Sub.mbox") + " at byte 53: larger than 20000 bytes" in output
    assert "skipped Folder/Sub message 3: refused by the MIME parser" in output
    assert "skipped bad*name: 'bad*name' is not a valid folder name" in output
    assert f"skipped {archive / 'notes.mbox'}: not an mbox file" in output
    assert output.endswith("imported 1 messages, skipped 4\n")
    assert Mailbox.objects.filter(account=account, name="Folder").exists()


def test_over_quota_messages_are_skipped(make_account, tmp_path: Path) -> None:
    account = make_account("u@example.test", quota_bytes=80)
    path = tmp_path / "q.mbox"
    path.write_bytes(
        b"".join(b"From a@b Mon Jan  1 10:00:00 2024\nSubject: %d\n\n" % n + b"y" * 20 + b"\n\n" for n in range(3))
    )
    output = run("importmail", account.address, "--format", "mbox", "--in", str(path))
    assert "skipped q message 3: the mailbox is full" in output
    assert Message.objects.filter(account=account).count() == 2


def test_command_errors(make_account, tmp_path: Path) -> None:
    account = make_account("u@example.test")
    with pytest.raises(CommandError, match=r"no account nobody@example\.test"):
        run("exportmail", "nobody@example.test", "--format", "mbox", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="has no folder 'Nope'"):
        run("exportmail", account.address, "--format", "mbox", "--out", str(tmp_path / "x"), "--folder", "Nope")
    with pytest.raises(CommandError, match="is a directory"):
        run("exportmail", account.address, "--format", "mbox", "--out", str(tmp_path), "--folder", "INBOX")
    with pytest.raises(CommandError, match="does not exist"):
        run("importmail", account.address, "--format", "maildir", "--in", str(tmp_path / "missing"))


def test_odd_messages_survive_both_formats_byte_for_byte(make_account, tmp_path: Path) -> None:
    source = make_account("from@example.test")
    inbox = Mailbox.objects.get(account=source, name="INBOX")
    for raw in odd_messages():
        actions.append(source, inbox.pk, raw, flags=["\\Seen"])
    for fmt in ("mbox", "maildir"):
        target = make_account(f"{fmt}@other.test")
        run("exportmail", source.address, "--format", fmt, "--out", str(tmp_path / fmt), "--folder", "INBOX")
        run("importmail", target.address, "--format", fmt, "--in", str(tmp_path / fmt), "--folder", "INBOX")
        got = sorted(bytes(m.body.raw) for m in Message.objects.filter(account=target).select_related("body"))
        assert got == sorted(odd_messages()), fmt


def test_nul_bytes_are_kept_and_keywords_that_are_no_imap_atoms_left_out(make_account, tmp_path: Path) -> None:
    account = make_account("u@example.test")
    path = tmp_path / "odd.mbox"
    path.write_bytes(
        b"From a@b Mon Jan  1 10:00:00 2024\r\nStatus: RO\r\nX-Status: \r\nX-Keywords: ok a\x00b (x) \xc3\xbc\r\n"
        b"Subject: NUL\r\n\r\na \x00 b\r\n\n"
    )
    assert run("importmail", account.address, "--format", "mbox", "--in", str(path)).endswith(
        "imported 1 messages, skipped 0\n"
    )
    (message,) = Message.objects.filter(account=account).select_related("body")
    assert bytes(message.body.raw) == b"Subject: NUL\r\n\r\na \x00 b\r\n"
    assert actions.flag_names(message) == ["\\Seen", "ok"]


@pytest.mark.parametrize("fmt", ["mbox", "maildir"])
def test_a_whole_domain(make_account, tmp_path: Path, fmt: str) -> None:
    first, second = make_account("a@example.test"), make_account("b@example.test")
    fill(first, 20)
    fill(second, 15, seed=3)
    make_account("c@other.test")
    exported = run("exportmail", "example.test", "--format", fmt, "--out", str(tmp_path / "domain"))
    assert exported.endswith("exported 35 messages of 2 accounts\n")
    assert sorted(p.name for p in (tmp_path / "domain").iterdir()) == ["a@example.test", "b@example.test"]
    (tmp_path / "domain" / "a@example.test").rename(tmp_path / "domain" / "x@new.test")
    (tmp_path / "domain" / "b@example.test").rename(tmp_path / "domain" / "y@new.test")
    (tmp_path / "domain" / "nobody@new.test").mkdir()
    x, y = make_account("x@new.test"), make_account("y@new.test")
    imported = run("importmail", "new.test", "--format", fmt, "--in", str(tmp_path / "domain"))
    assert f"skipped {tmp_path / 'domain' / 'nobody@new.test'}: no account nobody@new.test in new.test" in imported
    assert imported.endswith("imported 35 messages, skipped 0\n")
    whole = fmt == "mbox"
    assert contents(x, whole_seconds=whole) == contents(first, whole_seconds=whole)
    assert contents(y, whole_seconds=whole) == contents(second, whole_seconds=whole)
