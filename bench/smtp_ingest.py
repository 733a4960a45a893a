"""SMTP ingest throughput: accepted-and-stored messages per second over N parallel sessions.

    DATABASE_URL=postgres://... .venv/bin/python bench/smtp_ingest.py --host 127.0.0.1 --port 2525 \\
        --sessions 20 --messages 4000 --size 1024

Each session connects once and sends its share of the messages, pipelining MAIL/RCPT/DATA (RFC 2920), to one
local recipient, or with --recipients K to bench1@... benchK@... (session i to recipient i mod K), which
spreads the deliveries over K Inboxes instead of contending for one folder's row lock. Recipients are created
when missing (through the same DATABASE_URL the listener uses), and the figure counts only messages both
answered 250 and found stored afterwards, so a server that answers 250 without storing scores nothing.

The messages are lines of "x" by default, which a store indexes at the least cost; --content text sends plain
text of words (some with accents, quoted-printable) and --content html an HTML-only newsletter of them, so that
the work that depends on what a message says (its readable text, search words, compression) is measured too.

With --connection-per-message each message has a connection of its own, every command waits for its reply
and the session ends with QUIT, as most senders on the internet do; that measures the cost of a connection.
With --compare HOST:PORT the same load also runs against another server, alternating for --rounds rounds, and
the medians are printed with their ratio. To compare with Postfix on this machine: install Debian's postfix,
set `inet_interfaces = loopback-only`, `smtpd_recipient_restrictions = permit`, `mydestination = bench.test`,
`local_recipient_maps =` and `home_mailbox = Maildir/`, create the local user bench, then run with
`--compare 127.0.0.1:25` (check the Maildir's file count to see every accepted message was stored).

On Linux each run against --port or --compare also prints the server's CPU time per accepted message
(server-cpu): the time the whole machine was busy from the start of the run until a second after its end (so
work a server leaves for after its reply, such as Postfix's delivery to the Maildir, counts), less this bench's
own CPU time. It counts everything a server runs (Mailsite's listener and PostgreSQL, Postfix's processes) and
whatever else the machine did meanwhile: run it on a quiet machine. Beside it, the programs that took most of
that time, per message (by process name: `python` is Mailsite's listener, `postgres` its database; Postfix's
`smtpd`, `cleanup`, `local`, ...), so a change shows where it moved the time. A process that started and ended
within the run is not seen there (Postfix's short-lived ones), only in the machine's total.

With --compare-verification the bench starts the MX itself (`manage.py smtpd` on free ports) twice, with
sender verification off and on, and prints both rates. For the run with verification, a loopback DNS server
publishes sender.test's SPF record, DKIM key and DMARC policy (p=reject), and the listener's resolver caches
answers as it does in production. The messages of both runs are DKIM-signed (RSA-2048) before the clock starts,
so that the two differ only in the verification.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import quopri
import random
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsite.settings")


CONTENTS = ("lines", "text", "html")
_HEAD = 120  # about the bytes of `_message`'s own header fields
# Words of the text and HTML contents: English, with some of the accents and letters of other languages in Europe.
_WORDS = (
    "the message was stored once and a copy filed for every account it was sent to while the server answered "
    "other senders meanwhile please find the report attached and let me know what you think about it before "
    "Thursday Grüße aus Köln déjà vu naïve café Søren Łódź Ærøskøbing smörgåsbord señor façade"
)


def _stuffed(body: bytes) -> bytes:
    """`body` as DATA carries it: a line that starts with a dot gets another (RFC 5321 4.5.2)."""
    return (b"." if body.startswith(b".") else b"") + body.replace(b"\r\n.", b"\r\n..")


def _lines(per_line: int) -> Iterator[str]:
    """Lines of words picked at random, the same for every run."""
    pick, words = random.Random(per_line).choice, _WORDS.split()
    while True:
        yield " ".join(pick(words) for _ in range(per_line))


def _quoted_printable(lines: Iterable[str], room: int) -> bytes:
    """`lines` quoted-printable (UTF-8, CRLF line ends), as many as fit in `room` bytes (one at least)."""
    encoded, total = [], 0
    for line in lines:
        piece = quopri.encodestring(f"{line}\n".encode()).replace(b"\n", b"\r\n")
        if encoded and total + len(piece) > room:
            break
        encoded.append(piece)
        total += len(piece)
    return b"".join(encoded)


def _content(kind: str, size: int) -> bytes:
    """What follows the header fields of `_message` in every message of a run, about `size` bytes in all: the
    content's own fields, the blank line and its body. `lines`: lines of "x" (the bench's first content, which
    costs a server the least to index); `text`: plain text of words, quoted-printable UTF-8; `html`: the same
    words in an HTML-only newsletter (tables, styles, links), quoted-printable, as much bulk mail comes."""
    room = max(78, size - _HEAD)
    if kind == "lines":
        return b"\r\n" + (b"x" * 76 + b"\r\n") * (room // 78)
    subtype = "plain" if kind == "text" else "html"
    head = (
        f"MIME-Version: 1.0\r\nContent-Type: text/{subtype}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode()
    room -= len(head)
    if kind == "text":
        return head + _stuffed(_quoted_printable(_lines(11), room))
    top = "<html><head><style>p { color: #333; }</style></head><body><table>"
    rows = (
        f'<tr><td style="padding:8px;font-family:Arial"><p>{line}</p>'
        f'<a href="https://sender.test/story/{number}">Read more</a></td></tr>'
        for number, line in enumerate(_lines(12))
    )
    end = _quoted_printable(["</table></body></html>"], room)
    return head + _stuffed(_quoted_printable(itertools.chain([top], rows), room - len(end)) + end)


def _message(content: bytes, number: int) -> bytes:
    head = (
        f"From: bench@sender.test\r\nTo: {{rcpt}}\r\nSubject: bench {number}\r\n"
        f"Message-ID: <bench.{number}.{time.time_ns()}@sender.test>\r\n"
    ).encode()
    return head + content


async def _reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return line


async def _session(
    host: str,
    port: int,
    count: int,
    content: bytes,
    rcpt: str,
    first: int,
    prepared: dict[int, bytes] | None = None,
    *,
    per_message: bool = False,
) -> int:
    """Messages answered 250 by one sender; a session the server closes early counts what it got."""
    accepted = [0]
    try:
        if per_message:
            for number in range(first, first + count):
                await _one_connection(host, port, content, rcpt, number, accepted, prepared)
        else:
            await _transactions(host, port, count, content, rcpt, first, accepted, prepared)
    except ConnectionError as exc:
        print(f"a session ended early: {exc}", file=sys.stderr)
    return accepted[0]


async def _one_connection(
    host: str,
    port: int,
    content: bytes,
    rcpt: str,
    number: int,
    accepted: list[int],
    prepared: dict[int, bytes] | None,
) -> None:
    """One message the way most senders on the internet send it: its own connection, each command waiting for
    its reply (no PIPELINING), QUIT at the end."""
    body = (prepared[number] if prepared else _message(content, number)).replace(b"{rcpt}", rcpt.encode())
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await _reply(reader)
        for command in (b"EHLO bench.sender.test", b"MAIL FROM:<bench@sender.test>", f"RCPT TO:<{rcpt}>".encode()):
            writer.write(command + b"\r\n")
            if not (await _reply(reader)).startswith(b"250"):
                return
        writer.write(b"DATA\r\n")
        if not (await _reply(reader)).startswith(b"354"):
            return
        writer.write(body + b".\r\n")
        if (await _reply(reader)).startswith(b"250"):
            accepted[0] += 1
        writer.write(b"QUIT\r\n")
        await _reply(reader)
    finally:
        writer.close()


async def _transactions(
    host: str,
    port: int,
    count: int,
    content: bytes,
    rcpt: str,
    first: int,
    accepted: list[int],
    prepared: dict[int, bytes] | None = None,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await _reply(reader)
    writer.write(b"EHLO bench.sender.test\r\n")
    await _reply(reader)
    for number in range(first, first + count):
        body = (prepared[number] if prepared else _message(content, number)).replace(b"{rcpt}", rcpt.encode())
        writer.write(f"MAIL FROM:<bench@sender.test> SIZE={len(body)}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        replies = [await _reply(reader) for _ in range(3)]
        if not replies[2].startswith(b"354"):
            writer.write(b"RSET\r\n")
            await _reply(reader)
            continue
        writer.write(body + b".\r\n")
        if (await _reply(reader)).startswith(b"250"):
            accepted[0] += 1
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()


def _recipients(args: argparse.Namespace) -> list[str]:
    """Session i sends to recipient i modulo --recipients (bench1@..., bench2@..., or --recipient alone)."""
    if args.recipients == 1:
        return [args.recipient]
    local, _, domain = args.recipient.rpartition("@")
    return [f"{local}{n}@{domain}" for n in range(1, args.recipients + 1)]


def _stored(rcpts: list[str]) -> int:
    from mailboxes.models import Message

    return Message.objects.filter(account__address__in=rcpts).count()


def _ensure_recipient(rcpt: str) -> None:
    from mailboxes import actions
    from mailboxes.models import Account, Domain

    domain = rcpt.rpartition("@")[2]
    if not Domain.objects.filter(name=domain).exists():
        actions.create_domain(domain)
    if not Account.objects.filter(address=rcpt).exists():
        actions.create_account(rcpt, None)


SETTLE = 1.0  # seconds after a run whose busy time still counts as the server's (Linux only)


def _busy_seconds() -> float | None:
    """CPU time the whole machine has been busy since it started (Linux's /proc/stat), or None elsewhere."""
    try:
        user, nice, system, _idle, _iowait, irq, softirq = Path("/proc/stat").read_text().split()[1:8]
    except OSError:
        return None
    return sum(int(ticks) for ticks in (user, nice, system, irq, softirq)) / os.sysconf("SC_CLK_TCK")


def _process_times() -> dict[int, tuple[str, float]]:
    """Every other process's name and CPU time so far (`_name_and_cpu`)."""
    times: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            times[int(entry.name)] = _name_and_cpu(int(entry.name))
        except OSError:  # it ended meanwhile
            continue
    times.pop(os.getpid(), None)
    return times


def _programs(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], accepted: int) -> str:
    """The three programs that took most CPU time between the two readings, in ms per accepted message. Kernel
    threads count under their kind ("kworker/u8:4-events" is a kworker: its name changes with its work)."""
    spent: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        earlier = before.get(pid, (name, 0.0))[1]
        name = name.split("/")[0]
        spent[name] = spent.get(name, 0.0) + seconds - (earlier if earlier <= seconds else 0.0)  # else a new process
    top = sorted(spent.items(), key=lambda item: -item[1])[:3]
    return ", ".join(f"{name} {seconds * 1000 / accepted:.2f}" for name, seconds in top if seconds > 0)


def _run_with_cpu(args: argparse.Namespace) -> tuple[int, float, str]:
    """`_run`, and the server's CPU time per accepted message as text (empty where it cannot be read)."""
    busy, own = _busy_seconds(), time.process_time()
    processes = _process_times() if busy is not None else {}
    accepted, elapsed = asyncio.run(_run(args))
    time.sleep(SETTLE)
    busy_after, own_after = _busy_seconds(), time.process_time()
    if busy is None or busy_after is None or not accepted:
        return accepted, elapsed, ""
    server = (busy_after - busy) - (own_after - own)
    cpu = f" server-cpu={server / accepted * 1000:.2f} ms/msg"
    programs = _programs(processes, _process_times(), accepted)
    return accepted, elapsed, f"{cpu} ({programs})" if programs else cpu


async def _run(args: argparse.Namespace, prepared: dict[int, bytes] | None = None) -> tuple[int, float]:
    share, extra = divmod(args.messages, args.sessions)
    counts = [share + (1 if i < extra else 0) for i in range(args.sessions)]
    starts = [sum(counts[:i]) for i in range(args.sessions)]
    content = _content(args.content, args.size)
    began = time.perf_counter()
    recipients = _recipients(args)
    accepted = await asyncio.gather(
        *(
            _session(
                args.host,
                args.port,
                count,
                content,
                recipients[i % len(recipients)],
                start,
                prepared,
                per_message=args.connection_per_message,
            )
            for i, (count, start) in enumerate(zip(counts, starts, strict=True))
        )
    )
    return sum(accepted), time.perf_counter() - began


# --- --compare-verification: the MX with sender verification off and on ---------------------------------------


def _signing_zone():
    """A loopback DNS server answering for sender.test, and the key its messages are signed with."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.dns_server import DnsServer

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    dns = DnsServer()
    dns.add("sender.test", "TXT", '"v=spf1 ip4:127.0.0.0/8 -all"')
    dns.add("bench.sender.test", "TXT", '"v=spf1 ip4:127.0.0.0/8 -all"')
    dns.add("_dmarc.sender.test", "TXT", '"v=DMARC1; p=reject"')
    text = f"v=DKIM1; k=rsa; p={public}"
    dns.add("bench._domainkey.sender.test", "TXT", " ".join(f'"{text[i : i + 250]}"' for i in range(0, len(text), 250)))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return dns, pem


def _signed(messages: dict[int, bytes], pem: bytes) -> dict[int, bytes]:
    import dkim

    # To is left unsigned: each session fills in its own recipient after signing.
    return {
        number: dkim.sign(raw, b"bench", b"sender.test", pem, include_headers=[b"from", b"subject", b"message-id"])
        + raw
        for number, raw in messages.items()
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mx(environment: dict[str, str]):
    import socket
    import subprocess

    port = _free_port()
    env = {
        **os.environ,
        **environment,
        "MAILSITE_SMTP_PORT": str(port),
        "MAILSITE_SUBMISSION_PORT": str(_free_port()),
        "MAILSITE_SMTPS_PORT": str(_free_port()),
        "MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP": "1000",
    }
    manage = Path(__file__).resolve().parent.parent / "manage.py"
    process = subprocess.Popen([sys.executable, str(manage), "smtpd"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the MX did not start within 30 seconds")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux /proc): a figure other load on the machine barely moves."""
    return _name_and_cpu(pid)[1]


def _name_and_cpu(pid: int) -> tuple[str, float]:
    """A process's name and its user plus system CPU time in seconds, from /proc/PID/stat (proc(5))."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name, rest = text.split(" (", 1)[1].rsplit(")", 1)
    fields = rest.split()
    return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _compare(args: argparse.Namespace) -> None:
    dns, pem = _signing_zone()
    runs = (
        ("off", {"MAILSITE_AUTH_VERIFY": "false"}),
        ("on", {"MAILSITE_AUTH_VERIFY": "true", "MAILSITE_DNS_NAMESERVERS": dns.address}),
    )
    rates: dict[str, float] = {}
    cpu_per_message: dict[str, float] = {}
    rcpts = _recipients(args)
    content = _content(args.content, args.size)
    try:
        # Alternating rounds, best of each: other load on the machine then hurts both figures alike.
        for name, environment in runs * args.rounds:
            process, args.port = start_mx(environment)
            try:
                messages = {n: _message(content, n) for n in range(args.messages)}
                prepared = _signed(messages, pem)
                before, cpu_before = _stored(rcpts), cpu_seconds(process.pid)
                accepted, elapsed = asyncio.run(_run(args, prepared))
                cpu = cpu_seconds(process.pid) - cpu_before
                stored = _stored(rcpts) - before
            finally:
                process.terminate()
                process.wait(timeout=30)
            rate = min(accepted, stored) / elapsed
            rates[name] = max(rates.get(name, 0.0), rate)
            print(
                f"verification={name} sessions={args.sessions} messages={args.messages} size={args.size} "
                f"accepted={accepted} stored={stored} seconds={elapsed:.2f} rate={rate:.0f} msg/s "
                f"mx_cpu={1000 * cpu / max(accepted, 1):.2f} ms/msg"
            )
            cpu_per_message[name] = min(cpu_per_message.get(name, 1e9), cpu / max(accepted, 1))
    finally:
        dns.close()
    print(
        f"best of {args.rounds}: off={rates['off']:.0f} msg/s on={rates['on']:.0f} msg/s; "
        f"verification costs {100 * (1 - rates['on'] / rates['off']):.0f}% of the rate without it; "
        f"MX CPU per message off={1000 * cpu_per_message['off']:.2f} ms on={1000 * cpu_per_message['on']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000, help="total messages over all sessions")
    parser.add_argument("--size", type=int, default=1024, help="message size in bytes")
    parser.add_argument(
        "--content", choices=CONTENTS, default="lines", help="what the messages hold (see _content); lines by default"
    )
    parser.add_argument("--recipient", default="bench@bench.test")
    parser.add_argument(
        "--recipients", type=int, default=1, help="spread sessions over this many accounts (one Inbox lock each)"
    )
    parser.add_argument(
        "--compare-verification",
        action="store_true",
        help="start the MX itself, with sender verification off and then on (loopback DNS), and compare",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --compare(-verification): rounds of each")
    parser.add_argument(
        "--connection-per-message",
        action="store_true",
        help="a new connection per message, no pipelining, QUIT after each (as most senders do)",
    )
    parser.add_argument(
        "--compare",
        metavar="HOST:PORT",
        help="run the same load against another server too (e.g. a local Postfix), alternately, and print the ratio",
    )
    args = parser.parse_args()

    import django

    django.setup()
    rcpts = _recipients(args)
    for rcpt in rcpts:
        _ensure_recipient(rcpt)
    if args.compare_verification:
        _compare(args)
        return
    if args.compare:
        _compare_with(args, rcpts)
        return
    print(_measure(args, rcpts)[1])


def _analyze() -> None:
    """Statistics for the store's tables before a run, as autovacuum keeps them on a default PostgreSQL. Without
    them (autovacuum off, a new database) the listener keeps the plans it made for empty tables: a delivery's
    conversation lookup then reads every message of the account, and the rate falls as the Inbox grows."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _measure(args: argparse.Namespace, rcpts: list[str]) -> tuple[float, str]:
    """One run against --host/--port: the rate of messages both answered 250 and found stored."""
    _analyze()
    before = _stored(rcpts)
    accepted, elapsed, cpu = _run_with_cpu(args)
    stored = _stored(rcpts) - before
    rate = min(accepted, stored) / elapsed
    return rate, (
        f"sessions={args.sessions} recipients={args.recipients} messages={args.messages} size={args.size} "
        f"content={args.content} per-message-connections={args.connection_per_message} "
        f"accepted={accepted} stored={stored} seconds={elapsed:.2f} rate={rate:.0f} msg/s{cpu}"
    )


def _compare_with(args: argparse.Namespace, rcpts: list[str]) -> None:
    """Mailsite and another server, alternating for --rounds rounds; the other server's messages are counted as
    accepted (it has no store this bench can read: check its own delivery count)."""
    host, _, port = args.compare.rpartition(":")
    other = argparse.Namespace(**{**vars(args), "host": host, "port": int(port)})
    ours: list[float] = []
    theirs: list[float] = []
    for number in range(1, args.rounds + 1):
        rate, line = _measure(args, rcpts)
        ours.append(rate)
        print(f"round {number} mailsite: {line}")
        accepted, elapsed, cpu = _run_with_cpu(other)
        theirs.append(accepted / elapsed)
        print(
            f"round {number} {args.compare}: accepted={accepted} seconds={elapsed:.2f} rate={theirs[-1]:.0f} msg/s{cpu}"
        )
    median_ours, median_theirs = statistics.median(ours), statistics.median(theirs)
    print(
        f"median: mailsite {median_ours:.0f} msg/s, {args.compare} {median_theirs:.0f} msg/s, "
        f"ratio {median_ours / median_theirs:.2f}"
    )


if __name__ == "__main__":
    main()
