"""MAILSITE_LOG_FORMAT=json: a real `manage.py smtpd` writes one JSON object per line, and the lines of a session
and of each message carry the fields an operator filters on (the queue id above all)."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.e2e.conftest import PORT_SETTINGS, free_port
from tests.e2e.test_smtp_processes import wait_for_port
from tests.smtp_support import mail

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_smtpd(make_account, transactional_db):
    make_account("alice@example.com")
    test_database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{test_database['USER']}@{test_database['HOST']}:{test_database['PORT']}/"
        f"{test_database['NAME']}",
        "MAILSITE_LOG_FORMAT": "json",
        **{name: str(free_port()) for name in PORT_SETTINGS},
    }
    if connection.vendor != "postgresql":
        pytest.skip("the listener process needs the test database on a server (PostgreSQL)")
    smtpd = subprocess.Popen(
        [sys.executable, "manage.py", "smtpd"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    port = int(env["MAILSITE_SMTP_PORT"])
    try:
        wait_for_port(port, smtpd)
        yield port, smtpd
    finally:
        if smtpd.poll() is None:
            smtpd.send_signal(signal.SIGTERM)
            smtpd.communicate(timeout=30)


def test_sessions_and_messages_are_json_lines_with_the_queue_id(json_smtpd) -> None:
    port, smtpd = json_smtpd
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("client.test")
        client.mail("carol@remote.test")
        client.rcpt("alice@example.com")
        code, reply = client.data(mail("Logged"))
        assert code == 250
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail("carol@remote.test", ["alice@example.com"], mail("Loop", extra="Received: x\r\n" * 60))
    queue_id = reply.decode().rsplit(" ", 1)[1]
    smtpd.send_signal(signal.SIGTERM)
    _, stderr = smtpd.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.decode().splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "event", "message", "pid"} <= set(line) for line in lines)
    events = [line for line in lines if line["event"].startswith("smtp ")]
    # The readiness probe of the fixture opened a session too; the test's session is the last one.
    starts = [line for line in events if line["event"] == "smtp session start"]
    ends = [line for line in events if line["event"] == "smtp session end"]
    assert starts[-1]["client"] == ends[-1]["client"] == "127.0.0.1"
    assert starts[-1]["listener"] == "smtp"
    assert float(ends[-1]["duration"]) > 0
    accepted, refused = [line for line in events if line["event"] == "smtp message"]
    assert accepted["queue_id"] == queue_id
    assert accepted["result"] == f"250 2.0.0 Ok: queued as {queue_id}"
    assert (accepted["sender"], accepted["recipients"], accepted["client"]) == (
        "carol@remote.test",
        "alice@example.com",
        "127.0.0.1",
    )
    assert refused["result"].startswith("554 5.4.6 ")
    assert refused["queue_id"]
    assert refused["queue_id"] != queue_id
    assert events.index(accepted) < events.index(ends[-1])
