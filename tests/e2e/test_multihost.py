"""Several hosts, made with network namespaces (iproute2 veth pairs): two SMTP listener hosts behind Debian's
haproxy sending PROXY v2 and a worker host running Celery, against one PostgreSQL and one Redis (reached
through socat on each host's link, as a host reaches them over the network). The client's real address
reaches the Received header, the per-IP limit holds across both hosts, killing one host loses no message it
accepted, and the worker host relays what was queued.

Needs root (or CAP_NET_ADMIN) to make namespaces; where they cannot be made the test is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from mailboxes import actions
from mailboxes.models import Mailbox, Role
from ops import limits
from relay.models import OutboundRecipient
from tests.dns_server import DnsServer
from tests.e2e.conftest import free_port
from tests.e2e.test_proxy_haproxy import wait_for
from tests.e2e.test_smtp_processes import greeting
from tests.smtp_support import mail, stored

ROOT = Path(__file__).resolve().parents[2]
CLIENT_IP = "127.0.0.5"
SMTP_PORT = 2525
LIMIT = 2

HAPROXY = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend smtp
    bind 127.0.0.1:{front}
    default_backend hosts
backend hosts
    balance roundrobin
{servers}
"""


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@dataclass
class Host:
    name: str
    outside: str  # the root namespace's end of its link
    inside: str  # the host's own address
    processes: list[subprocess.Popen[bytes]]


@pytest.fixture
def network(tmp_path: Path) -> Iterator[list[Host]]:
    """Three namespaces (two listener hosts, a worker host), each with a veth link to this one and socat
    forwarding PostgreSQL and Redis to it."""
    if shutil.which("ip") is None or shutil.which("socat") is None:
        pytest.fail("ip and socat are needed: apt-get install iproute2 socat (scripts/install-test-deps.sh does)")
    tag = f"ms{os.getpid() % 100000}"
    probe = subprocess.run(["ip", "netns", "add", f"{tag}probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"network namespaces cannot be created here: {probe.stderr.strip()}")
    run("ip", "netns", "del", f"{tag}probe")
    hosts: list[Host] = []
    subnet = 200 + os.getpid() % 50
    try:
        for number in (1, 2, 3):
            name = f"{tag}h{number}"
            host = Host(name, f"10.{subnet}.{number}.1", f"10.{subnet}.{number}.2", [])
            hosts.append(host)
            run("ip", "netns", "add", name)
            run("ip", "link", "add", f"{name}o", "type", "veth", "peer", "name", f"{name}i")
            run("ip", "link", "set", f"{name}i", "netns", name)
            run("ip", "addr", "add", f"{host.outside}/24", "dev", f"{name}o")
            run("ip", "link", "set", f"{name}o", "up")
            run("ip", "netns", "exec", name, "ip", "addr", "add", f"{host.inside}/24", "dev", f"{name}i")
            run("ip", "netns", "exec", name, "ip", "link", "set", f"{name}i", "up")
            run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
            for port in (5432, 6379):
                host.processes.append(
                    subprocess.Popen(
                        ["socat", f"TCP-LISTEN:{port},bind={host.outside},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        yield hosts
    finally:
        for host in hosts:
            for process in host.processes:
                if process.poll() is None:
                    process.terminate()
                process.communicate(timeout=30)
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{host.name}o"], capture_output=True)


def start_listener(host: Host, data_dir: Path) -> subprocess.Popen[bytes]:
    database = connection.settings_dict
    broker = os.environ["MAILSITE_BROKER_URL"].replace("127.0.0.1", host.outside)
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{host.outside}:{database['PORT']}/{database['NAME']}",
        "MAILSITE_BROKER_URL": broker,
        "MAILSITE_DATA_DIR": str(data_dir),
        "MAILSITE_BIND": host.inside,
        "MAILSITE_HOSTNAME": f"{host.name}.mailsite.test",
        "MAILSITE_SMTP_PORT": str(SMTP_PORT),
        "MAILSITE_SUBMISSION_PORT": "2587",
        "MAILSITE_SMTPS_PORT": "2465",
        "MAILSITE_PROXY_PROTOCOL_FROM": host.outside,
        "MAILSITE_SMTP_MAX_CONNECTIONS_PER_IP": str(LIMIT),
    }
    process = subprocess.Popen(
        ["ip", "netns", "exec", host.name, sys.executable, "manage.py", "smtpd"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    host.processes.append(process)
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            # Whether it listens (it then waits for a PROXY header from us, and we close).
            socket.create_connection((host.inside, SMTP_PORT), timeout=1).close()
            return process
        except OSError:
            assert time.monotonic() < deadline, f"{host.name}: smtpd did not start"
            time.sleep(0.3)


@pytest.fixture
def balanced(
    network, make_account, transactional_db, tmp_path: Path
) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    if connection.vendor != "postgresql" or not limits.shared():
        pytest.fail("the hosts share PostgreSQL and Redis: run the suite with both (DATABASE_URL, MAILSITE_BROKER_URL)")
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: apt-get install haproxy (scripts/install-test-deps.sh does)")
    make_account("alice@example.com")
    listeners = [start_listener(host, tmp_path / host.name) for host in network[:2]]
    front = free_port()
    servers = "\n".join(
        f"    server {host.name} {host.inside}:{SMTP_PORT} send-proxy-v2 check inter 500 fall 1" for host in network[:2]
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY.format(front=front, servers=servers))
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(front, haproxy)
        time.sleep(1)  # both servers checked up
        yield front, listeners, [host.name for host in network[:2]]
    finally:
        haproxy.terminate()
        haproxy.communicate(timeout=10)


def send(front: str | int, subject: str) -> bool:
    """One message through the balancer from the client's address; whether it was accepted (250)."""
    try:
        with smtplib.SMTP("127.0.0.1", int(front), source_address=(CLIENT_IP, 0), timeout=20) as client:
            client.ehlo("client.test")
            client.sendmail("carol@remote.test", ["alice@example.com"], mail(subject))
        return True
    except (smtplib.SMTPException, OSError):
        return False


def test_two_listener_hosts_behind_haproxy(balanced) -> None:
    front, listeners, hosts = balanced
    # Round robin: one message through each host, each naming the client's real address.
    assert send(front, "first")
    assert send(front, "second")
    raws = stored("alice@example.com")
    assert len(raws) == 2
    assert all(b"Received: from client.test ([127.0.0.5])\r\n" in raw for raw in raws)
    by = {raw.split(b"\r\n\tby ", 1)[1].split(b" ", 1)[0] for raw in raws}
    assert by == {f"{host}.mailsite.test".encode() for host in hosts}

    # The per-IP limit holds across the hosts: one session held on each, the next is refused by either.
    opened = []
    try:
        for _ in range(LIMIT):
            sock, reply = greeting(front, CLIENT_IP)
            opened.append(sock)
            assert reply.startswith(b"220 ")
        sock, reply = greeting(front, CLIENT_IP)
        opened.append(sock)
        assert reply.startswith(b"421 "), reply
    finally:
        for sock in opened:
            sock.close()
    time.sleep(0.5)

    # Kill one host while mail flows: every message answered 250 is stored, and the other host goes on.
    accepted: list[str] = []
    for number in range(20):
        if number == 5:
            os.kill(listeners[0].pid, signal.SIGKILL)
        subject = f"flow {number}"
        if send(front, subject):
            accepted.append(subject)
    subjects = {raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for raw in stored("alice@example.com")}
    assert set(accepted) <= subjects, "a message answered 250 was lost"
    assert len([subject for subject in accepted if int(subject.split()[1]) >= 5]) >= 10, "the other host took over"


def test_the_worker_host_relays_what_the_store_queued(
    network, transactional_db, make_account, settings, tmp_path: Path
) -> None:
    """A message queued for a domain without mail servers: the worker on its own host takes the task from
    Redis, asks DNS (a server on its link), and the bounce reaches the sender's Inbox through PostgreSQL."""
    if connection.vendor != "postgresql" or not limits.shared():
        pytest.fail("the hosts share PostgreSQL and Redis: run the suite with both (DATABASE_URL, MAILSITE_BROKER_URL)")
    worker_host = network[2]
    alice = make_account("alice@example.com")
    settings.MAILSITE_RELAY_QUEUE = f"multihost-{os.getpid()}"
    dns = DnsServer(host=worker_host.outside)  # every name NXDOMAIN
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{worker_host.outside}:{database['PORT']}/{database['NAME']}",
        "MAILSITE_BROKER_URL": os.environ["MAILSITE_BROKER_URL"].replace("127.0.0.1", worker_host.outside),
        "MAILSITE_DATA_DIR": str(tmp_path / "worker"),
        "MAILSITE_RELAY_QUEUE": settings.MAILSITE_RELAY_QUEUE,
        "MAILSITE_DNS_NAMESERVERS": dns.address,
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            *("ip", "netns", "exec", worker_host.name, sys.executable, "-m", "celery"),
            *("--app", "mailsite.celery", "worker"),
            *("--queues", settings.MAILSITE_RELAY_QUEUE, "--concurrency", "1", "--loglevel", "INFO"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker_host.processes.append(worker)
    log.close()
    try:
        sent = Mailbox.objects.get(account=alice, role=Role.SENT).pk
        raw = mail("Far away", sender="alice@example.com", to="bob@nowhere.test")
        actions.send(alice, raw, ["bob@nowhere.test"], sent_copy=raw, sent_folder=sent, author_domain="example.com")
        deadline = time.monotonic() + 90
        while not any(b"Subject: Undelivered Mail Returned to Sender" in m for m in stored("alice@example.com")):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text(errors="replace")[-3000:] + str(
                (dns.queries, list(OutboundRecipient.objects.values_list("state", "last_reply")))
            )
            time.sleep(0.5)
        assert ("nowhere.test", "MX") in dns.queries
    finally:
        dns.close()
