"""The performance figures in one run (`make bench`): SMTP ingest, POP3 download, IMAP fetch and mix, listener
memory, each printed by its own bench script.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailsite_bench .venv/bin/python bench/all.py [--quick]
        [--postfix 127.0.0.1:25] [--dovecot-imap 127.0.0.1:10143] [--dovecot-pop3 127.0.0.1:10110]

The database is migrated and gets the account bench@bench.test (`bench/pop3_retr.py`'s user): use a scratch
database. The mail listeners run as the compose file runs them (`manage.py listen`, on free loopback ports,
production settings, sender verification off since the load comes from loopback). Then, in order:
`bench/listener_memory.py` (no clients yet), `bench/pop3_retr.py` over 2,000 seeded messages,
`bench/imap_fetch.py` on a 10,000-message folder (with the listener's memory under 1,000 IDLE sessions),
`bench/imap_mix.py` with 10 clients and `bench/smtp_ingest.py` with a connection per message in the four
workloads of the performance targets (1 KiB and 100 KiB, one connection at a time and 20 at once), then the
100 KiB ones again with messages of words (`--content text`: what a store spends on what a message says, which
lines of x do not show; not a row of the targets). Each comparison option runs those benches against the other
server too, set up as each bench's docstring says: the POP3 download and the IMAP fetch bench after Mailsite's,
the IMAP mix and SMTP ingest alternating, with the ratio. For POP3 the other server must hold the same 2,000
messages for the same user and password. --quick uses smaller counts, for a look rather than figures.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

import listener_memory  # bench/, beside this script
from listener_memory import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
USER, PASSWORD = "bench@bench.test", "bench password"
PORTS = [setting for settings in listener_memory.PORTS.values() for setting in settings]


def _run(title: str, script: str, *args: str, env: dict[str, str]) -> None:
    print(f"\n== {title}", flush=True)
    subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts: a look, not figures")
    parser.add_argument("--postfix", metavar="HOST:PORT", help="compare SMTP ingest with this server")
    parser.add_argument("--dovecot-imap", metavar="HOST:PORT", help="compare the IMAP benches with this server")
    parser.add_argument("--dovecot-pop3", metavar="HOST:PORT", help="compare the POP3 download with this server")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a scratch PostgreSQL database (the figures are PostgreSQL's)")
    env = {
        **os.environ,
        "MAILSITE_SECRET_KEY": os.environ.get("MAILSITE_SECRET_KEY") or secrets.token_urlsafe(50),
        "MAILSITE_DEBUG": "false",
        "MAILSITE_INSECURE_HTTP": "true",  # nothing here serves the web
        "MAILSITE_AUTH_VERIFY": "false",
        # Every session comes from 127.0.0.1: the per-address limits would refuse the load, not measure it.
        "MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP": "1000",
        **{name: str(free_port()) for name in PORTS},
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    seeded = 200 if args.quick else 2000
    _run("memory of the listeners with no clients", "listener_memory.py", "--settle", "5", env=env)
    _run(f"seeding {seeded} messages", "pop3_retr.py", "--seed", str(seeded), env=env)
    listen = subprocess.Popen([sys.executable, "manage.py", "listen"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        for name in ("MAILSITE_SMTP_PORT", "MAILSITE_POP3_PORT", "MAILSITE_IMAP_PORT"):
            wait_for(int(env[name]), listen, "manage.py listen")
        _bench(args, env, listen.pid)
    finally:
        listen.terminate()
        listen.wait(timeout=30)


def _bench(args: argparse.Namespace, env: dict[str, str], listener: int) -> None:
    pop3, imap, smtp = env["MAILSITE_POP3_PORT"], env["MAILSITE_IMAP_PORT"], env["MAILSITE_SMTP_PORT"]
    _run("POP3: LIST and RETR of every message, Mailsite", "pop3_retr.py", "--port", pop3, env=env)
    if args.dovecot_pop3:
        host, port = args.dovecot_pop3.rsplit(":", 1)
        _run(f"POP3: the same from {args.dovecot_pop3}", "pop3_retr.py", "--host", host, "--port", port, env=env)
    login = ["--user", USER, "--password", PASSWORD]
    messages = ["--messages", "1000" if args.quick else "10000"]
    fetch = [*login, *messages, "--big", "0", "--idle", "0" if args.quick else "1000"]
    # --pid: the listener's memory with the IDLE sessions (every protocol's listener is that one process).
    _run("IMAP: FETCH, SEARCH, SELECT, LOGIN", "imap_fetch.py", "--port", imap, *fetch, "--pid", str(listener),
         env=env)  # fmt: skip
    if args.dovecot_imap:
        host, port = args.dovecot_imap.rsplit(":", 1)
        _run(f"IMAP: the same from {args.dovecot_imap}", "imap_fetch.py", "--host", host, "--port", port, *fetch,
             env=env)  # fmt: skip
    compare_imap = ["--compare", args.dovecot_imap] if args.dovecot_imap else []
    _run("IMAP: 10-client mix", "imap_mix.py", "--port", imap, *login, *messages,
         "--seconds", "5" if args.quick else "20", *compare_imap, env=env)  # fmt: skip
    compare_smtp = ["--compare", args.postfix] if args.postfix else []
    for content, size in (("lines", 1024), ("lines", 102400), ("text", 102400)):
        for sessions in (1, 20):
            count = (200 if args.quick else 2000) // (1 if size == 1024 else 4)
            words = ", text of words" if content == "text" else ""
            _run(f"SMTP: {size // 1024} KiB{words}, {sessions} connection(s) at a time", "smtp_ingest.py",
                 "--port", smtp, "--connection-per-message", "--sessions", str(sessions), "--content", content,
                 "--messages", str(count), "--size", str(size), *compare_smtp, env=env)  # fmt: skip


if __name__ == "__main__":
    main()
