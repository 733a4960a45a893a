"""`manage.py smtpd` with several listener processes: one port, one count of each client's connections."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def greeting(port: int, source: str | None = None) -> tuple[socket.socket, bytes]:
    """Connect (from `source`, a loopback address, if given) and read the greeting."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0) if source else None)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(512)
        if not chunk:
            break
        reply += chunk
    return sock, reply


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else "smtpd exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "smtpd did not start listening"
            time.sleep(0.2)


def test_the_per_ip_limit_holds_across_listener_processes(bare_environment):
    env = {**bare_environment, "MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP": "5"}
    port = int(env["MAILSITE_SMTP_PORT"])
    smtpd = subprocess.Popen(
        [sys.executable, "manage.py", "smtpd", "--processes", "3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    opened: list[socket.socket] = []
    try:
        wait_for_port(port, smtpd)
        time.sleep(1)  # the probe's connection is released, and every process has bound the port
        replies = []
        for _ in range(12):  # the kernel spreads these over the three processes
            sock, reply = greeting(port)
            opened.append(sock)
            replies.append(reply[:3])
        assert replies.count(b"220") == 5, replies
        assert replies.count(b"421") == 7, replies
        for sock in opened:
            sock.close()
        opened.clear()
        time.sleep(0.5)
        again = []
        for _ in range(5):
            sock, reply = greeting(port)
            opened.append(sock)
            again.append(reply[:3])
        assert again == [b"220"] * 5, "closed connections no longer count, in whichever process they were"
    finally:
        for sock in opened:
            sock.close()
        smtpd.send_signal(signal.SIGTERM)
        smtpd.communicate(timeout=30)
    assert not list((Path(env["MAILSITE_DATA_DIR"]) / "run").glob("smtp-connections.*")), "the table is removed"
