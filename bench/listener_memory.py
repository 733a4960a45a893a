"""Memory of the mail listeners with no clients: one process for all of them, as the compose file runs them,
or one process each.

    DATABASE_URL=postgres://... MAILSITE_SECRET_KEY=... .venv/bin/python bench/listener_memory.py [--settle 10]
        [--separate] [--processes 1]

Starts `manage.py listen` (every listener in one process; with --processes N, N such processes under a parent),
or with --separate `manage.py smtpd`, `pop3d`, `imapd` and `managesieve` (smtpd with one process), on free
ports; waits until each answers on its ports and then --settle seconds more, and prints each process's resident
memory (RSS) and proportional share (PSS, from /proc/PID/smaps_rollup) and the totals; then stops them. The
target is 150 MB of RSS together.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORTS = {
    "smtpd": ("MAILSITE_SMTP_PORT", "MAILSITE_SUBMISSION_PORT", "MAILSITE_SMTPS_PORT"),
    "pop3d": ("MAILSITE_POP3_PORT", "MAILSITE_POP3S_PORT"),
    "imapd": ("MAILSITE_IMAP_PORT", "MAILSITE_IMAPS_PORT"),
    "managesieve": ("MAILSITE_MANAGESIEVE_PORT",),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    return values["Rss"], values["Pss"]


def _tree(pid: int) -> list[int]:
    """The process and its children (a multi-process listener's), parent first."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(child) for child in children)]


def wait_for(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not listen within 60 seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait once every listener answers")
    parser.add_argument("--separate", action="store_true", help="one process per protocol instead of `listen`")
    parser.add_argument("--processes", type=int, default=1, help="listener processes `listen` runs")
    args = parser.parse_args()
    commands = {name: (settings,) for name, settings in PORTS.items()}
    if not args.separate:
        commands = {"listen": tuple(PORTS.values())}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, groups in commands.items():
            ports = {setting: free_port() for settings in groups for setting in settings}
            env = {**os.environ, **{setting: str(port) for setting, port in ports.items()}}
            env["MAILSITE_SMTP_PROCESSES"] = "1" if args.separate else str(args.processes)
            processes[name] = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), name], env=env, stderr=subprocess.DEVNULL
            )
            for settings in groups:
                wait_for(ports[settings[0]], processes[name], name)
        time.sleep(args.settle)
        total_rss = total_pss = 0
        for name, process in processes.items():
            for pid in _tree(process.pid):
                rss, pss = _memory_kib(pid)
                total_rss, total_pss = total_rss + rss, total_pss + pss
                label = name if pid == process.pid else f"  child {pid}"
                print(f"{label:12} rss={rss / 1024:6.1f} MiB  pss={pss / 1024:6.1f} MiB")
        print(f"{'together':12} rss={total_rss / 1024:6.1f} MiB  pss={total_pss / 1024:6.1f} MiB")
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
