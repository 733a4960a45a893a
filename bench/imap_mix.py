"""IMAP mixed load: N clients each looping connect + LOGIN, SELECT, a few random FETCH/STORE/APPEND/EXPUNGE and
LOGOUT for a fixed time; prints commands per second, per-command p50/p99 latency and errors. An expunge is two
commands, timed apart: "store-deleted" (UID STORE +FLAGS.SILENT (\\Deleted)) and "expunge" (UID EXPUNGE).

    .venv/bin/python bench/imap_mix.py --host 127.0.0.1 --port 1143 --user bench@example.test --password secret \\
        [--clients 10] [--seconds 30] [--messages 10000] [--compare 127.0.0.1:10143] [--rounds 3]

The folder "bench" is filled to --messages first (as bench/imap_fetch.py does) and stays near that size: each
client expunges only what it appended, in the same session or a later one. With --compare HOST:PORT the
same workload runs against that server too (same user and password; for example a local Dovecot), the two
alternating for --rounds rounds, and the medians are printed side by side with their ratio. Every command that
does not end in OK counts as an error; "connect" is the time from opening the socket to LOGIN's OK.

Every change rewrites its folder's row: on a PostgreSQL with autovacuum off, each round would find more dead row
versions than the one before and the figures would drift down, and the first rounds after the fill would run on the
plans made for the empty tables. So when DATABASE_URL names the listener's PostgreSQL database, the bench runs
VACUUM ANALYZE there after the fill and before each of its rounds (outside the timed part).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imap_fetch import Client, fill, sample  # a sibling script, not a package


class Tally:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors = 0
        self.reasons: dict[str, int] = defaultdict(int)

    def failed(self, name: str, exc: Exception) -> None:
        self.errors += 1
        self.reasons[f"{name}: {str(exc).strip()[:80]}"] += 1

    async def timed(self, name: str, step) -> bool:
        started = time.perf_counter()
        try:
            await step
        except (RuntimeError, ConnectionError, OSError) as exc:
            self.failed(name, exc)
            return False
        self.latencies[name].append(time.perf_counter() - started)
        return True

    @property
    def commands(self) -> int:
        return sum(len(values) for values in self.latencies.values())


_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


async def _session(
    host: str, port: int, user: str, password: str, tally: Tally, rng: random.Random, appended: list[int]
) -> None:
    started = time.perf_counter()
    try:
        client = await Client.connect(host, port)
        await client.command(f'LOGIN "{user}" "{password}"'.encode())
    except (RuntimeError, ConnectionError, OSError) as exc:
        tally.failed("connect+login", exc)
        return
    tally.latencies["connect+login"].append(time.perf_counter() - started)
    try:
        if not await tally.timed("select", client.command(b"SELECT bench")):
            return
        for _ in range(5):
            kind = rng.choice(("fetch", "store", "append", "expunge"))
            if kind == "fetch":
                first = rng.randint(1, 9000)
                item = b"UID FETCH %d:%d (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)" % (first, first + 49)
                await tally.timed("fetch", client.command(item))
            elif kind == "store":
                uid = rng.randint(1, 10000)
                flag = rng.choice((b"+FLAGS", b"-FLAGS"))
                await tally.timed("store", client.command(b"UID STORE %d %s (\\Seen)" % (uid, flag)))
            elif kind == "append" or not appended:
                raw = sample(rng.randint(0, 10**6))
                await tally.timed("append", _append(client, raw, appended))
            else:
                # Only what this client appended is expunged (UIDPLUS, RFC 4315), in this session or a later one, so
                # the folder stays near its size.
                # Two commands, each timed on its own: the p99 target is per command.
                uid = appended.pop()
                if await tally.timed("store-deleted", client.command(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)):
                    await tally.timed("expunge", client.command(b"UID EXPUNGE %d" % uid))
        await tally.timed("logout", client.command(b"LOGOUT"))
    finally:
        client.writer.close()


async def _append(client: Client, raw: bytes, appended: list[int]) -> None:
    line, _ = await client.command(b"APPEND bench {%d+}\r\n" % len(raw) + raw)
    found = _APPENDUID.search(line)
    if found:
        appended.append(int(found[1]))


async def _client_loop(host: str, port: int, user: str, password: str, until: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    appended: list[int] = []  # UIDs this client appended and has not expunged yet
    while time.perf_counter() < until:
        await _session(host, port, user, password, tally, rng, appended)


async def run(host: str, port: int, user: str, password: str, clients: int, seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_client_loop(host, port, user, password, until, tally, n) for n in range(clients)))
    return tally, time.perf_counter() - started


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def report(label: str, tally: Tally, elapsed: float) -> float:
    rate = tally.commands / elapsed
    print(f"{label}: {tally.commands} commands in {elapsed:.1f} s = {rate:.0f} commands/s, errors={tally.errors}")
    for name, values in sorted(tally.latencies.items()):
        p50, p99 = _percentile(values, 0.5) * 1000, _percentile(values, 0.99) * 1000
        print(f"  {name:14} n={len(values):6}  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
    for reason, count in sorted(tally.reasons.items()):
        print(f"  error x{count}: {reason}")
    return rate


async def prepare(host: str, port: int, user: str, password: str, messages: int) -> None:
    client = await Client.connect(host, port)
    await client.command(f'LOGIN "{user}" "{password}"'.encode())
    await fill(client, messages)
    await client.command(b"LOGOUT")


def vacuum() -> None:
    """VACUUM ANALYZE the listener's database, when DATABASE_URL names a PostgreSQL one."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1143)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--compare", help="HOST:PORT of another IMAP server to run the same load against")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    targets = [("mailsite", args.host, args.port)]
    if args.compare:
        host, _, port = args.compare.rpartition(":")
        targets.append(("compared", host, int(port)))
    for _, host, port in targets:
        asyncio.run(prepare(host, port, args.user, args.password, args.messages))
    rates: dict[str, list[float]] = defaultdict(list)
    for number in range(args.rounds if args.compare else 1):
        for label, host, port in targets:
            if label == "mailsite":
                vacuum()
            tally, elapsed = asyncio.run(run(host, port, args.user, args.password, args.clients, args.seconds))
            rates[label].append(report(f"{label} round {number + 1}", tally, elapsed))
    if args.compare:
        ours, theirs = statistics.median(rates["mailsite"]), statistics.median(rates["compared"])
        print(f"median commands/s: mailsite {ours:.0f}, compared {theirs:.0f}, ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
