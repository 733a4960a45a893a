"""SMTP ingest with a 20-rule Sieve script active, against none: bench/smtp_ingest.py's rate, both ways.

    DATABASE_URL=postgres://... .venv/bin/python bench/sieve_ingest.py --sessions 20 --messages 2000 --rounds 3

Starts the MX itself (`manage.py smtpd` on free ports), then runs bench/smtp_ingest.py against it in
alternating rounds: without a script, and with the 20-rule script below active for the recipient. The script
is what a user's rules editor writes: nineteen header, address and size tests that do not match the bench's
messages, and a last rule that files every one of them into a folder with a flag, so every message pays for
every test and takes the filing path. Prints each round and the best rate of each, and how far the script
brings the rate down.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smtp_ingest import cpu_seconds, start_mx  # noqa: E402 (a sibling script, found once sys.path names it)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")

RULES = "\n".join(
    [
        'require ["fileinto", "imap4flags", "mailbox", "copy", "relational", "body", "comparator-i;ascii-numeric"];',
        *(f'if header :contains "subject" "project-{n}" {{ fileinto :create "P/{n}"; stop; }}' for n in range(6)),
        *(f'if address :domain :is "from" "partner{n}.example" {{ fileinto "Partners"; }}' for n in range(6)),
        'if header :matches "list-id" "*<*.lists.example>" { fileinto :create "Lists"; stop; }',
        'if exists "x-mailing-list" { fileinto :create "Lists"; stop; }',
        'if size :over 5M { addflag "$Big"; }',
        'if header :value "ge" :comparator "i;ascii-numeric" "x-priority" "5" { addflag "$Low"; }',
        'if header :contains ["to", "cc"] "all-staff@" { fileinto :copy :create "Staff"; }',
        'if address :localpart :is "from" ["noreply", "no-reply"] { addflag "$Robot"; }',
        'if body :contains "unsubscribe here" { fileinto :create "Newsletters"; }',
        'if header :contains "subject" "bench" { addflag "$Bench"; fileinto :create "Bench"; }',
    ]
)


def _ingest(args: argparse.Namespace, port: int) -> float:
    command = [
        sys.executable,
        str(ROOT / "bench" / "smtp_ingest.py"),
        f"--port={port}",
        f"--sessions={args.sessions}",
        f"--messages={args.messages}",
        f"--size={args.size}",
        f"--recipient={args.recipient}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"rate=(\d+) msg/s", output)
    if found is None:
        raise SystemExit(f"smtp_ingest.py printed no rate: {output}")
    return float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--recipient", default="sieve-bench@bench.test")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from mailboxes import actions
    from mailboxes.models import Account, Domain
    from sieve import scripts

    domain = args.recipient.rpartition("@")[2]
    if not Domain.objects.filter(name=domain).exists():
        actions.create_domain(domain)
    account = Account.objects.filter(address=args.recipient).first() or actions.create_account(args.recipient, None)
    scripts.put_script(account, "bench-rules", RULES)

    process, port = start_mx({})
    best: dict[str, float] = {}
    least_cpu: dict[str, float] = {}
    try:
        # Alternating rounds, best of each: other load on the machine then hurts both figures alike.
        for _ in range(args.rounds):
            for name in ("none", "20 rules"):
                scripts.set_active(account, "bench-rules" if name == "20 rules" else "")
                cpu = cpu_seconds(process.pid)
                rate = _ingest(args, port)
                cpu_ms = 1000 * (cpu_seconds(process.pid) - cpu) / args.messages
                best[name] = max(best.get(name, 0.0), rate)
                least_cpu[name] = min(least_cpu.get(name, 1e9), cpu_ms)
                print(
                    f"script={name!r} sessions={args.sessions} messages={args.messages} rate={rate:.0f} msg/s "
                    f"mx_cpu={cpu_ms:.2f} ms/msg"
                )
    finally:
        scripts.set_active(account, "")
        process.terminate()
        process.wait(timeout=30)
    print(
        f"best of {args.rounds}: none={best['none']:.0f} msg/s, 20 rules={best['20 rules']:.0f} msg/s; "
        f"the script costs {100 * (1 - best['20 rules'] / best['none']):.0f}% of the rate; MX CPU per message "
        f"none={least_cpu['none']:.2f} ms, 20 rules={least_cpu['20 rules']:.2f} ms"
    )


if __name__ == "__main__":
    main()
