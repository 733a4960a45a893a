"""A real POP3 client from Debian, getmail6, downloads a mailbox over POP3S byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import PASSWORD
from tests.pop3_support import ADDRESS, deliver, eight_bit_mail, large_mail, multipart_mail, stored, text_mail

GETMAIL = shutil.which("getmail")


@pytest.mark.slow
def test_getmail_downloads_every_message_unchanged(listeners, make_account, tmp_path: Path, request) -> None:
    assert GETMAIL, "getmail6 is not installed: scripts/install-test-deps.sh installs it"
    make_account(ADDRESS)
    deliver(text_mail("plain"), eight_bit_mail(), multipart_mail(), large_mail())
    port = listeners("pop3d")["pop3s"].port
    # Outside pytest's private (0700) temporary tree: getmail delivers as "nobody" when run as root.
    top = Path(tempfile.mkdtemp(prefix="pop3-getmail-"))
    top.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(top))
    maildir = top / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
        (maildir / sub).chmod(0o777)  # getmail refuses to deliver as root and writes as "nobody" then
    run_as = "user = nobody\n" if os.getuid() == 0 else ""
    rc = tmp_path / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
        f"port = {port}\nusername = {ADDRESS}\npassword = {PASSWORD}\n"
        f"ca_certs = {settings.TEST_CA_FILE}\nssl_cert_hostname = localhost\n"
        f"[destination]\ntype = Maildir\npath = {maildir}/\n{run_as}"
        "[options]\nread_all = true\ndelete = false\ndelivered_to = false\nreceived = false\nverbose = 0\n"
    )
    result = subprocess.run(
        [GETMAIL, "--rcfile", str(rc), "--getmaildir", str(tmp_path)], capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    downloaded = sorted(path.read_bytes() for path in (maildir / "new").iterdir())
    # getmail writes files with the platform's LF line ending and puts its Return-Path first (ours is first).
    assert downloaded == sorted(raw.replace(b"\r\n", b"\n") for _, raw in stored())
