"""The `make run` path: migrate, demo account, and `runmail` bringing the whole system up and down."""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def web_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def inbox_subjects(port: int, password: str) -> list[bytes]:
    client = imaplib.IMAP4("127.0.0.1", port)
    try:
        client.login("demo@example.test", password)
        client.select("INBOX", readonly=True)
        _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [item[1].strip() for item in data if isinstance(item, tuple)]
    finally:
        client.logout()


def exercise_every_protocol(env: dict[str, str], password: str) -> None:
    """Mail in over MX and submission, out over POP3 and IMAP, and a relay bounce through the embedded broker."""
    port = {name: int(env[f"MAILSITE_{name}_PORT"]) for name in ["SMTP", "SUBMISSION", "POP3", "IMAP"]}
    with smtplib.SMTP("127.0.0.1", port["SMTP"]) as mx:
        mx.sendmail("friend@remote.test", ["demo@example.test"], b"Subject: Hello from the MX\r\n\r\nHi\r\n")
    # The self-signed certificate made on first start is the only one to trust.
    trust = ssl.create_default_context(cafile=Path(env["MAILSITE_DATA_DIR"]) / "tls" / "cert.pem")
    with smtplib.SMTP("127.0.0.1", port["SUBMISSION"]) as submission:
        submission.starttls(context=trust)
        submission.login("demo@example.test", password)
        submission.sendmail(
            "demo@example.test",
            ["someone@nowhere.test", "demo@example.test"],
            b"From: demo@example.test\r\nTo: someone@nowhere.test\r\nSubject: Out\r\n\r\nBye\r\n",
        )
    pop = poplib.POP3("127.0.0.1", port["POP3"])
    pop.user("demo@example.test")
    pop.pass_(password)
    assert pop.stat()[0] >= 2
    pop.quit()
    assert inbox_subjects(port["IMAP"], password)[:2] == [b"Subject: Hello from the MX", b"Subject: Out"]
    # nowhere.test is NXDOMAIN: the worker's attempt bounces and the DSN lands in the Inbox.
    wait_for(lambda: len(inbox_subjects(port["IMAP"], password)) == 3, "the bounce of the relayed copy")
    assert inbox_subjects(port["IMAP"], password)[2] == b"Subject: Undelivered Mail Returned to Sender"


def test_setup_then_runmail_serves_and_stops_cleanly(bare_environment: dict[str, str]) -> None:
    env = bare_environment
    assert manage(env, "migrate", "--noinput").returncode == 0
    demo = manage(env, "setupdemo")
    assert "demo@example.test" in demo.stdout
    password = re.search(r"password: (\S+)", demo.stdout).group(1)
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
    lines: list[str] = []
    reading = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reading.start()
    try:
        url = f"http://127.0.0.1:{env['MAILSITE_HTTP_PORT']}/admin/login/"

        def serving() -> bool:
            if process.poll() is not None:
                reading.join(5)
                pytest.fail(f"runmail exited with {process.returncode}:\n{''.join(lines)}")
            return web_answers(url)

        wait_for(serving, "the web server")
        # A worker killed outright is started again; the relay's bounce below needs the new one.
        first = worker_pids(lines)
        wait_for(lambda: worker_pids(lines), "the worker")
        os.kill(worker_pids(lines)[0], signal.SIGKILL)
        wait_for(lambda: len(worker_pids(lines)) == 2, "the worker's restart", timeout=60)
        assert first in ([], worker_pids(lines)[:1])
        exercise_every_protocol(env, password)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reading.join(10)
        process.stdout.close()
    output = "".join(lines)
    assert process.returncode == 0, output
    for line in ["smtp listening on", "imaps listening on", "pop3s listening on", "web listening on", "worker started"]:
        assert line in output
    assert "worker exited status=SIGKILL; restarting in 1s" in output
    assert "stopped" in output
    assert "Traceback" not in output
    # Every line names the process it came from.
    assert all(line.startswith(("runmail | ", "mail   | ", "worker | ")) for line in lines), output
    assert any(line.startswith("mail   | ") and "smtp listening on" in line for line in lines)


def worker_pids(lines: list[str]) -> list[int]:
    """The pids of the workers runmail started, in order."""
    return [int(found) for line in list(lines) for found in re.findall(r"worker started \(pid (\d+)\)", line)]
