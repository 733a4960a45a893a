"""The `make run` path: migrate, demo account, and `runmail` bringing the whole system up and down."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORT_SETTINGS = [
    "MAILSITE_SMTP_PORT",
    "MAILSITE_SUBMISSION_PORT",
    "MAILSITE_SMTPS_PORT",
    "MAILSITE_POP3_PORT",
    "MAILSITE_POP3S_PORT",
    "MAILSITE_IMAP_PORT",
    "MAILSITE_IMAPS_PORT",
    "MAILSITE_HTTP_PORT",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bare_environment(tmp_path: Path) -> dict[str, str]:
    """What a bare machine has: no database or broker settings, so SQLite and the embedded broker are used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSITE_", "DATABASE_URL", "DJANGO_"))}
    env["MAILSITE_DATA_DIR"] = str(tmp_path / "var")
    env.update({name: str(free_port()) for name in PORT_SETTINGS})
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_setup_then_runmail_serves_and_stops_cleanly(bare_environment: dict[str, str]) -> None:
    env = bare_environment
    assert manage(env, "migrate", "--noinput").returncode == 0
    demo = manage(env, "setupdemo")
    assert "demo@example.test" in demo.stdout
    assert "password:" in demo.stdout
    assert "no demo account" in manage(env, "setupdemo").stdout  # only on an empty database

    process = subprocess.Popen(
        [sys.executable, "manage.py", "runmail"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{env['MAILSITE_HTTP_PORT']}/admin/login/"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "web server did not come up"
                time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, output
    assert "web listening on" in output
    assert "worker started" in output
    assert "stopped" in output
    assert "Traceback" not in output
