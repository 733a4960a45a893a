"""A real client: mbsync (isync) syncs a folder tree between our IMAP server and a Maildir, both ways.

mbsync keeps Maildir messages with LF line endings: it turns each CRLF it fetches into LF and each LF it
uploads into CRLF. It also adds one "X-TUID:" field (12 characters) at the end of the header of each message it
copies, to find the copy again if the run is interrupted. So a message fetched from the server must equal the
stored bytes with CRLF made LF once that field is taken out, and nothing else may differ.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from mailboxes import actions
from mailboxes.models import Message
from tests.conftest import PASSWORD
from tests.imap_support import ADDRESS, MIME_CORPUS, Server, deliver, message, start

pytestmark = pytest.mark.xdist_group("mbsync")

INBOX_FILES = ["plain_ascii.eml", "nested_related.eml", "latin1_8bit.eml", "forward_rfc822.eml"]


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def mbsyncrc(server: Server, tmp_path: Path) -> Path:
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount mailsite
Host localhost
Port {server.tls_port}
User {ADDRESS}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {settings.TEST_CA_FILE}
AuthMechs LOGIN

IMAPStore remote
Account mailsite

MaildirStore local
Path {tmp_path}/mail/
Inbox {tmp_path}/mail/INBOX
SubFolders Verbatim

Channel mailsite
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
    )
    return config


def sync(config: Path) -> None:
    result = subprocess.run(
        ["mbsync", "--config", str(config), "--all"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    # mbsync reports every problem on stderr, even those it survives.
    assert result.stderr == ""


def without_tuid(data: bytes, newline: bytes = b"\n") -> bytes:
    """The message without the one X-TUID field mbsync adds as the last header field."""
    header, blank, body = data.partition(newline * 2)
    *fields, last = header.split(newline)
    assert re.fullmatch(rb"X-TUID: [A-Za-z0-9+/]{12}", last), data[:2000]
    assert not any(name.startswith(b"X-TUID:") for name in fields)
    return newline.join(fields) + blank + body


def maildir_messages(folder: Path) -> list[Path]:
    return sorted([*(folder / "cur").iterdir(), *(folder / "new").iterdir()])


def stored(folder: str) -> dict[bytes, Message]:
    """The messages of a server folder by their bytes."""
    messages = Message.objects.filter(mailbox__account__address=ADDRESS, mailbox__name=folder).select_related("body")
    return {bytes(m.body.raw): m for m in messages}


def test_mbsync_syncs_a_folder_tree_both_ways(server: Server, tmp_path: Path) -> None:
    for name in INBOX_FILES:
        deliver((MIME_CORPUS / name).read_bytes())
    alpha = actions.create_mailbox(server.account, "Projects/Alpha")
    actions.append(server.account, alpha.pk, message("In a subfolder"), flags=["\\Seen", "\\Flagged"])
    config = mbsyncrc(server, tmp_path)
    mail = tmp_path / "mail"
    mail.mkdir()  # mbsync creates folders in a Maildir store, not the store's own directory

    sync(config)

    for folder in ("INBOX", "Projects/Alpha"):
        local = {without_tuid(path.read_bytes()) for path in maildir_messages(mail / folder)}
        assert local == {raw.replace(b"\r\n", b"\n") for raw in stored(folder)}, folder
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert (mail / name / "cur").is_dir()
    original_inbox = set(stored("INBOX"))
    (alpha_file,) = maildir_messages(mail / "Projects/Alpha")
    assert alpha_file.name.endswith(":2,FS")

    # In the Maildir: flag one message, mark one deleted, add a message and a new folder with a message.
    first, second, *_ = maildir_messages(mail / "INBOX")
    flagged_copy = without_tuid(first.read_bytes()).replace(b"\n", b"\r\n")
    deleted_copy = without_tuid(second.read_bytes()).replace(b"\n", b"\r\n")
    assert {flagged_copy, deleted_copy} <= original_inbox
    first.rename(mail / "INBOX" / "cur" / (first.name.split(":2,")[0] + ":2,FS"))
    second.rename(mail / "INBOX" / "cur" / (second.name.split(":2,")[0] + ":2,ST"))
    added = message("Written in the Maildir", "Line one\nLine two\n").replace(b"\r\n", b"\n")
    (mail / "INBOX" / "new" / "1700000000.local1.host").write_bytes(added)
    beta = mail / "Projects" / "Beta"
    for sub in ("cur", "new", "tmp"):
        (beta / sub).mkdir(parents=True)
    in_beta = message("In a new folder").replace(b"\r\n", b"\n")
    (beta / "cur" / "1700000001.local2.host:2,S").write_bytes(in_beta)

    sync(config)

    inbox = {without_tuid(raw, b"\r\n") if b"X-TUID" in raw else raw: m for raw, m in stored("INBOX").items()}
    assert set(inbox) == {
        *(raw for raw in original_inbox if raw != deleted_copy),
        added.replace(b"\n", b"\r\n"),
    }
    assert inbox[flagged_copy].flagged
    assert inbox[flagged_copy].seen
    assert not inbox[added.replace(b"\n", b"\r\n")].seen
    beta_messages = stored("Projects/Beta")
    assert [without_tuid(raw, b"\r\n") for raw in beta_messages] == [in_beta.replace(b"\n", b"\r\n")]
    assert next(iter(beta_messages.values())).seen
