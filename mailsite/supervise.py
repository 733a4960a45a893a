"""What `runmail` does for the processes it starts: label every line with its process's name, and restart a
process that dies.

`runmail` runs the listeners and the web server itself (its lines are "mail") and the Celery worker as a child
("worker"), whose output it reads and writes on as its own, each line labelled: `worker | ...` in text, a
"service" field in JSON (MAILSITE_LOG_FORMAT=json), as foreman and docker compose label a service's lines. A
child that exits while runmail is not stopping is logged with its exit status and started again after a delay
that doubles from 1 s up to a minute while it keeps dying at once, and starts at 1 s again once it has run for
a minute (supervisord's and systemd's Restart= behaviour).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

from django.conf import settings

log = logging.getLogger("mailsite")

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
STABLE_AFTER = 60.0  # seconds a child must run before its next death counts as a first one
STOP_TIMEOUT = 20.0


def labelled(name: str, line: str) -> str:
    """One line of a process's output, labelled with its name."""
    if settings.MAILSITE_LOG_FORMAT == "json":
        try:
            fields = json.loads(line)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            fields = {"message": line}  # a line not written by our logging (a warning printed by a library)
        return json.dumps({"service": name, **fields}, ensure_ascii=False)
    return f"{name:<6} | {line}"


class LabelledFormatter(logging.Formatter):
    """Wraps the configured formatter so this process's own lines carry its name too."""

    def __init__(self, name: str, inner: logging.Formatter) -> None:
        super().__init__()
        self.name = name
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(labelled(self.name, line) for line in self.inner.format(record).split("\n"))


def label_own_lines(name: str) -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(LabelledFormatter(name, handler.formatter or logging.Formatter()))


class Supervised:
    """A child process, kept running until `stop`; its output goes to our stderr, labelled.

    A thread of its own starts the child and waits for it (asyncio's subprocess wait would also wait for the
    pipe, which the pool processes a killed Celery worker leaves behind keep open). The child gets SIGTERM if
    that thread ends without it, so children do not outlive a runmail that was killed (Linux' PDEATHSIG).
    """

    def __init__(self, name: str, command: Sequence[str]) -> None:
        self.name = name
        self.command = list(command)
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"supervise-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = FIRST_DELAY
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                started = time.monotonic()
                self.process = process = subprocess.Popen(
                    self.command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: what it forks goes with it
                    preexec_fn=_end_with_supervisor,
                )
            log.info("%s started (pid %s)", self.name, process.pid)
            assert process.stdout is not None
            pumping = threading.Thread(target=self._pump, args=(process.stdout,), daemon=True)
            pumping.start()
            status = process.wait()
            # Children it leaves behind (a pool's processes) would keep the pipe open and run unsupervised.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            pumping.join()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_AFTER:
                delay = FIRST_DELAY
            log.warning("%s exited status=%s; restarting in %gs", self.name, _status(status), delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_DELAY)

    def _pump(self, output: IO[bytes]) -> None:
        with output:
            for raw in output:
                sys.stderr.write(labelled(self.name, raw.decode(errors="replace").rstrip("\r\n")) + "\n")
                sys.stderr.flush()

    async def stop(self) -> None:
        """Ask the child to finish (SIGTERM, then SIGKILL after STOP_TIMEOUT) and stop restarting it."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)


def _end_with_supervisor() -> None:
    """In the child before it runs: SIGTERM when the thread that started it ends (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 is PR_SET_PDEATHSIG (linux/prctl.h)


def _status(code: int) -> str:
    """An exit code as `wait` gives it: the number, or the signal's name (-9 is SIGKILL)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return str(code)
