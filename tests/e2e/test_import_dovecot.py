"""A foreign server both ways: a Mailsite account exported as Maildir is served by Debian's Dovecot on
loopback, and importimap brings it back from Dovecot: folders, flags, keywords, internal dates and bytes."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from mailcore.crlf import to_crlf
from tests.conftest import PASSWORD
from tests.e2e.conftest import free_port
from tests.transfer_support import FOLDERS, contents, fill

INSTALL = "apt-get install -y dovecot-imapd (or scripts/install-test-deps.sh)"
SOURCE, TARGET = "src@source.test", "dst@dest.test"
# Maildir++ has no way to keep a "." inside a folder name that Dovecot would show as such.
DOVECOT_FOLDERS = [name for name in FOLDERS if "." not in name]

CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


class Dovecot:
    def __init__(self, user: str) -> None:
        binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
        if binary is None:
            pytest.fail(f"Dovecot is not installed: {INSTALL}")
        # Outside pytest's tmp_path: its parents are private to root, which Dovecot's own users cannot enter, and
        # Unix socket paths are short (108 bytes).
        self.root = root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        os.chmod(root, 0o755)
        self.port = free_port()
        self.maildir = root / "mail" / user
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        # Mail is accessed as nobody (Dovecot refuses root); its home must be writable for the index files.
        (root / "users").write_text(f"{user}:{{PLAIN}}{PASSWORD}:65534:65534::{root}/mail/{user}::\n")
        (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=self.port))
        self.binary = binary
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        for path in [self.root / "mail", *self.root.joinpath("mail").rglob("*")]:
            os.chown(path, 65534, 65534)
        self.process = subprocess.Popen([self.binary, "-F", "-c", str(self.root / "dovecot.conf")])
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.root / "dovecot.log"
                    pytest.fail("Dovecot did not start: " + (log.read_text() if log.exists() else "no log"))
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot(SOURCE)
    yield server
    server.stop()


def test_export_to_dovecot_and_import_back(dovecot, make_account, monkeypatch) -> None:
    source = make_account(SOURCE)
    target = make_account(TARGET)
    fill(source, 300, folders=DOVECOT_FOLDERS)
    call_command("exportmail", SOURCE, "--format", "maildir", "--out", str(dovecot.maildir), stdout=io.StringIO())
    dovecot.start()
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    call_command(
        "importimap",
        TARGET,
        "--host",
        "127.0.0.1",
        "--port",
        str(dovecot.port),
        "--user",
        SOURCE,
        "--plain",
        "--password-stdin",
        stdout=out,
    )
    assert out.getvalue().endswith("imported 300 messages, 0 imported before, skipped 0\n"), out.getvalue()
    expected = contents(source, whole_seconds=True)
    # IMAP sends lines ending in CRLF (RFC 3501 2.2): Dovecot serves the few stored with bare LF that way.
    expected = {name: sorted((to_crlf(raw), *rest) for raw, *rest in rows) for name, rows in expected.items()}
    assert contents(target, whole_seconds=True) == expected
