"""swaks, the SMTP test tool from Debian, against the MX and submission listeners."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import PASSWORD
from tests.smtp_support import stored

SWAKS = shutil.which("swaks")


@pytest.fixture
def ports(listeners, make_account):
    assert SWAKS, "swaks is not installed: scripts/install-test-deps.sh installs it"
    make_account("alice@example.com")
    make_account("bob@example.com")
    started = listeners("smtpd")
    return started["smtp"].port, started["submission"].port, started["smtps"].port


def swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SWAKS, "--server", f"127.0.0.1:{port}", "--helo", "client.test", "--timeout", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("pipelining", [False, True], ids=["one by one", "pipelined"])
def test_mx_accepts_mail_for_local_users(ports, pipelining):
    mx, _, _ = ports
    run = swaks(
        mx,
        *(["--pipeline"] if pipelining else []),
        "--from", "carol@remote.test",
        "--to", "alice@example.com,bob@example.com",
        "--header", "Subject: from swaks",
        "--body", "..a line that starts with a dot\nand a bare LF line ending",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "250 2.0.0 Ok: queued as" in run.stdout
    for address in ("alice@example.com", "bob@example.com"):
        [raw] = stored(address)
        assert b"Subject: from swaks\r\n" in raw
        assert b"\r\n..a line that starts with a dot\r\nand a bare LF line ending\r\n" in raw


def test_mx_refuses_unknown_users_and_relaying(ports):
    mx, _, _ = ports
    unknown = swaks(mx, "--from", "carol@remote.test", "--to", "nobody@example.com")
    assert unknown.returncode != 0
    assert "550 5.1.1" in unknown.stdout
    relay = swaks(mx, "--from", "carol@remote.test", "--to", "someone@elsewhere.test")
    assert relay.returncode != 0
    assert "554 5.7.1" in relay.stdout


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_submission_with_starttls_and_auth(ports, mechanism):
    _, submission, _ = ports
    run = swaks(
        submission, "--tls", "--auth", mechanism, "--auth-user", "alice@example.com", "--auth-password", PASSWORD,
        "--from", "alice@example.com", "--to", "bob@example.com", "--header", "Subject: submitted",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    [raw] = stored("bob@example.com")
    assert b"with ESMTPSA (TLSv1.3)" in raw
    assert len(re.findall(rb"(?im)^message-id:", raw)) == 1, "swaks sent one; none is added beside it"


def test_submission_over_implicit_tls_refuses_a_wrong_password(ports):
    _, _, smtps = ports
    run = swaks(
        smtps, "--tls-on-connect", "--auth", "PLAIN", "--auth-user", "alice@example.com", "--auth-password", "wrong",
        "--from", "alice@example.com", "--to", "bob@example.com",
    )  # fmt: skip
    assert run.returncode != 0
    assert "535 5.7.8" in run.stdout
    assert stored("bob@example.com") == []
