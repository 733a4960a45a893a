"""runmail's supervision (mailsite/supervise.py) with real child processes: every line labelled with its
process, a child that keeps dying restarted after doubling delays, and nothing left running after stop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from pathlib import Path

import pytest

from mailsite import supervise


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(supervise, "FIRST_DELAY", 0.2)
    monkeypatch.setattr(supervise, "MAX_DELAY", 0.8)


def test_a_child_that_keeps_dying_is_restarted_with_backoff(quick, caplog, capfd) -> None:
    caplog.set_level(logging.INFO, logger="mailsite")
    crashing = supervise.Supervised("crash", [sys.executable, "-c", "print('up'); raise SystemExit(3)"])

    async def run() -> None:
        crashing.start()
        await asyncio.sleep(3)
        await crashing.stop()

    asyncio.run(run())
    restarts = [record.getMessage() for record in caplog.records if "exited" in record.getMessage()]
    delays = [float(re.search(r"restarting in ([\d.]+)s", message).group(1)) for message in restarts]
    assert restarts[0] == "crash exited status=3; restarting in 0.2s"
    assert delays[:4] == [0.2, 0.4, 0.8, 0.8], "doubling up to the maximum"
    output = capfd.readouterr().err.splitlines()
    assert output
    assert all(line == "crash  | up" for line in output)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, killed but not yet reaped by init, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_what_a_child_forks_goes_with_it(quick, tmp_path) -> None:
    pid_file = tmp_path / "grandchild"
    # The child forks a grandchild that would outlive it (as a Celery worker's pool does), then is killed.
    script = (
        "import os, signal, subprocess, sys\n"
        "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'a').write(f'{{grandchild.pid}}\\n')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = supervise.Supervised("forker", [sys.executable, "-c", script])

    async def run() -> list[int]:
        child.start()
        await asyncio.sleep(2)  # several deaths and restarts
        await child.stop()
        return [int(pid) for pid in pid_file.read_text().split()]

    grandchildren = asyncio.run(run())
    assert len(grandchildren) >= 2, "restarted"
    assert not [pid for pid in grandchildren if alive(pid)], "each went with its parent's process group"


def test_json_lines_get_a_service_field(settings) -> None:
    settings.MAILSITE_LOG_FORMAT = "json"
    line = json.dumps({"time": "t", "level": "INFO", "event": "smtp session start", "client": "192.0.2.1"})
    assert json.loads(supervise.labelled("mail", line)) == {
        "service": "mail",
        "time": "t",
        "level": "INFO",
        "event": "smtp session start",
        "client": "192.0.2.1",
    }
    # A line printed by a library, not our logging, still becomes one JSON object.
    assert json.loads(supervise.labelled("worker", "SecurityWarning: root")) == {
        "service": "worker",
        "message": "SecurityWarning: root",
    }
    settings.MAILSITE_LOG_FORMAT = "text"
    assert supervise.labelled("worker", "hello") == "worker | hello"
