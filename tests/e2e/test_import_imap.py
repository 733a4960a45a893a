"""importimap against a second Mailsite IMAP listener on loopback: every folder, flags, keywords, internal
dates and bytes; killed half-way and run again without duplicates; over implicit TLS."""

from __future__ import annotations

import io
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection

from mailboxes.models import Account, Message
from tests.conftest import PASSWORD
from tests.transfer_support import FOLDERS, contents, fill
from transfer.models import ImportedMessage

ROOT = Path(__file__).resolve().parents[2]
SOURCE, TARGET = "src@source.test", "dst@dest.test"


@pytest.fixture
def ports(listeners) -> dict[str, int]:
    return {name: listener.port for name, listener in listeners("imapd").items()}


@pytest.fixture
def accounts(make_account) -> tuple[Account, Account]:
    return make_account(SOURCE), make_account(TARGET)


def importimap(monkeypatch, port: int, *options: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    call_command(
        "importimap", TARGET, "--host", "127.0.0.1", "--port", str(port), "--user", SOURCE, *options, stdout=out
    )
    return out.getvalue()


def test_everything_arrives_exactly_and_a_second_run_adds_nothing(ports, accounts, monkeypatch) -> None:
    source, target = accounts
    fill(source, 400)
    output = importimap(monkeypatch, ports["imap"], "--plain", "--password-stdin")
    assert output.endswith("imported 400 messages, 0 imported before, skipped 0\n"), output
    # INTERNALDATE has whole seconds (RFC 3501 2.3.3).
    assert contents(target, whole_seconds=True) == contents(source, whole_seconds=True)
    assert sorted(contents(target)) == sorted(FOLDERS)
    again = importimap(monkeypatch, ports["imap"], "--plain", "--password-stdin")
    assert again.endswith("imported 0 messages, 400 imported before, skipped 0\n"), again
    assert Message.objects.filter(account=target).count() == 400


@pytest.mark.parametrize(("listener", "mode"), [("imaps", "--tls"), ("imap", "--starttls")])
def test_over_tls(ports, accounts, monkeypatch, listener: str, mode: str) -> None:
    source, target = accounts
    fill(source, 12)
    output = importimap(
        monkeypatch, ports[listener], mode, "--cafile", django_settings.TEST_CA_FILE, "--password-stdin"
    )
    assert output.endswith("imported 12 messages, 0 imported before, skipped 0\n"), output
    assert contents(target, whole_seconds=True) == contents(source, whole_seconds=True)


def test_an_untrusted_certificate_is_refused(ports, accounts, monkeypatch) -> None:
    with pytest.raises(CommandError, match="the server's certificate is not trusted: "):
        importimap(monkeypatch, ports["imaps"], "--tls", "--password-stdin")


def test_wrong_password_is_a_clear_error(ports, accounts, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong\n"))
    with pytest.raises(Exception, match="sign-in refused"):
        call_command(
            "importimap",
            TARGET,
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["imap"]),
            "--user",
            SOURCE,
            "--plain",
            "--password-stdin",
            stdout=io.StringIO(),
        )


@pytest.fixture
def start_import(tmp_path: Path) -> Iterator[Callable[[int], subprocess.Popen]]:
    """Start `manage.py importimap` in a process of its own, on the test database."""
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL (set DATABASE_URL), which a second process can share")
    db = connection.settings_dict
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MAILSITE_SECRET_KEY": secrets.token_urlsafe(50),
        "MAILSITE_DATA_DIR": str(tmp_path / "var"),
    }
    started: list[subprocess.Popen] = []

    def start(port: int) -> subprocess.Popen:
        command = [sys.executable, "manage.py", "importimap", TARGET, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--user", SOURCE, "--plain", "--password-stdin"]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        started.append(process)
        assert process.stdin is not None
        process.stdin.write(PASSWORD.encode() + b"\n")
        process.stdin.close()
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.slow
def test_2000_messages_killed_halfway_and_resumed_without_duplicates(
    accounts, start_import, monkeypatch, ports
) -> None:
    source, target = accounts
    fill(source, 2000)
    import_process = start_import(ports["imap"])
    deadline = time.monotonic() + 120
    while ImportedMessage.objects.filter(account=target).count() < 1000:
        assert import_process.poll() is None, import_process.stdout.read() if import_process.stdout else ""
        assert time.monotonic() < deadline, "the import made no progress"
        time.sleep(0.02)
    os.kill(import_process.pid, signal.SIGKILL)
    import_process.wait(timeout=30)
    first = ImportedMessage.objects.filter(account=target).count()
    assert 1000 <= first < 2000
    assert Message.objects.filter(account=target).count() == first  # each stored message recorded, and no more
    output = importimap(monkeypatch, ports["imap"], "--plain", "--password-stdin")
    assert output.endswith(f"imported {2000 - first} messages, {first} imported before, skipped 0\n"), output
    assert contents(target, whole_seconds=True) == contents(source, whole_seconds=True)
