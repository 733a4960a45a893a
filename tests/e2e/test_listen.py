"""`manage.py listen`: every mail listener in one process (or in each of several), as the compose file runs them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_smtp_processes import greeting, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
# The first bytes each protocol's greeting starts with (ManageSieve's begins with its capabilities, RFC 5804 1.7).
GREETINGS = {
    "MAILSITE_SMTP_PORT": b"220 ",
    "MAILSITE_SUBMISSION_PORT": b"220 ",
    "MAILSITE_POP3_PORT": b"+OK ",
    "MAILSITE_IMAP_PORT": b"* OK ",
    "MAILSITE_MANAGESIEVE_PORT": b'"IMPLEMENTATION" ',
}


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize("processes", [1, 2])
def test_every_protocol_answers_from_one_command(bare_environment, processes):
    env = bare_environment
    listen = subprocess.Popen(
        [sys.executable, "manage.py", "listen", "--processes", str(processes)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        for setting in GREETINGS:
            wait_for_port(int(env[setting]), listen)
        for setting, expected in GREETINGS.items():
            sock, reply = greeting(int(env[setting]))
            sock.close()
            assert reply.startswith(expected), (setting, reply)
        health = subprocess.run(
            [sys.executable, "manage.py", "health", "smtpd", "pop3d", "imapd", "managesieve"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        children = _children(listen.pid)
        assert len(children) == (0 if processes == 1 else processes), children
    finally:
        listen.send_signal(signal.SIGTERM)
        output = listen.communicate(timeout=30)[0].decode()
    assert listen.returncode == 0, output
    for child in children:
        assert not Path(f"/proc/{child}").exists(), "every listener process stops with the command"
    deadline = time.monotonic() + 5
    while any(_port_open(int(env[setting])) for setting in GREETINGS):
        assert time.monotonic() < deadline, "a port is still served after the command stopped"
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
