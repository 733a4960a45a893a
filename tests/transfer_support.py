"""A mailbox of varied messages in several folders, and a way to compare two accounts' folders exactly."""

from __future__ import annotations

import datetime
import random
from pathlib import Path

from mailboxes import actions
from mailboxes.models import Account, Mailbox, Message

DATA = Path(__file__).parent / "data"
CORPUS = sorted((DATA / "mime").glob("*.eml")) + sorted((DATA / "imap").glob("*.eml"))
FOLDERS = ["INBOX", "Sent", "Drafts", "Archive", "Junk", "Trash", "Work", "Work/Projects", "Entwürfe", "Lists.2024"]
FLAG_CHOICES = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded", "$Label1", "todo"]


def odd_messages() -> list[bytes]:
    """Messages that trip up archive formats and importers."""
    return [
        b"Subject: From lines\r\n\r\nFrom the start of a line\r\n>From quoted\r\n>>From twice\r\n",
        b"From: looks@like.a.separator\r\nSubject: separator-like\r\n\r\n"
        b"From bob@example.org Mon Jan  1 10:00:00 2024\r\n",
        b"Subject: no final line end\r\n\r\nlast line",
        b"Subject: mixed line ends\r\n\r\nbare\nLF\r\nand CR\r done\r\n",
        b"Subject: 8-bit \xc3\xa4\xc3\xb6\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe2\x82\xac\r\n",
        b"Status: RO\r\nX-Status: A\r\nX-Keywords: theirs\r\nSubject: own metadata headers\r\n\r\nx\r\n",
        b"Subject: big\r\nContent-Type: application/octet-stream\r\n\r\n" + b"QUJD" * 100_000 + b"\r\n",
        b"Subject: empty body\r\n\r\n",
    ]


def fill(account: Account, count: int, *, seed: int = 7, folders: list[str] = FOLDERS) -> None:
    """`count` messages spread over FOLDERS: the corpus, odd messages and generated ones, random flags and
    internal dates with microseconds."""
    rng = random.Random(seed)
    for name in folders:
        if not Mailbox.objects.filter(account=account, name=name).exists():
            actions.create_mailbox(account, name)
    ids = {m.name: m.pk for m in Mailbox.objects.filter(account=account)}
    sources = [path.read_bytes() for path in CORPUS] + odd_messages()
    start = datetime.datetime(2015, 3, 1, tzinfo=datetime.UTC)
    for number in range(count):
        raw = (
            sources[number]
            if number < len(sources)
            else (
                f"From: Sender {number} <s{number}@example.org>\r\nTo: {account.address}\r\n"
                f"Subject: Message {number}\r\nMessage-ID: <m{number}@example.org>\r\n\r\n"
                + "Line of text.\r\n"
                * rng.randrange(1, 50)
            ).encode()
        )
        folder = folders[number % len(folders)]
        flags = rng.sample(FLAG_CHOICES, rng.randrange(0, 4))
        when = start + datetime.timedelta(seconds=rng.randrange(0, 10 * 365 * 86400), microseconds=rng.randrange(10**6))
        actions.append(account, ids[folder], raw, flags=flags, internal_date=when)


def contents(account: Account, *, whole_seconds: bool = False) -> dict[str, list[tuple]]:
    """Folder name -> its messages as (bytes, flags, internal date), sorted, for comparing two accounts."""
    result: dict[str, list[tuple]] = {}
    for mailbox in Mailbox.objects.filter(account=account).order_by("name"):
        rows = []
        for message in Message.objects.filter(mailbox=mailbox).select_related("body"):
            when = message.internal_date.replace(microsecond=0) if whole_seconds else message.internal_date
            rows.append((bytes(message.body.raw), sorted(actions.flag_names(message)), when))
        result[mailbox.name] = sorted(rows)
    return result
