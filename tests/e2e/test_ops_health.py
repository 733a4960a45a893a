"""/healthz, /readyz and `manage.py health` against real listeners, a real broker and the web under uvicorn."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command

from mailsite import runtime
from ops import checks
from ops.targets import Target


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def wrong_greeter() -> Iterator[int]:
    """A server on loopback that accepts connections and greets like no mail protocol."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # a blocked accept() would not notice the socket closing
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            with client:
                client.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_healthz_says_the_process_is_alive(web_server, db) -> None:
    assert get(f"{web_server.url}/healthz") == (200, {"status": "ok"})


def test_readyz_checks_the_database_the_broker_and_every_listener_started(web_server, listeners) -> None:
    started = {**listeners("smtpd"), **listeners("pop3d")}
    status, body = get(f"{web_server.url}/readyz")
    assert status == 200, body
    assert body["status"] == "ready"
    expected = {"database", "broker"} | {f"{name}@127.0.0.1:{listener.port}" for name, listener in started.items()}
    assert set(body["checks"]) == expected
    assert set(body["checks"].values()) == {"ok"}


def test_readyz_answers_503_with_a_reason_per_failed_check(web_server, listeners, settings, wrong_greeter) -> None:
    smtp = listeners("smtpd")["smtp"]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/8"
    down, stranger = closed_port(), wrong_greeter
    settings.MAILSITE_READY_LISTENERS = (Target("imap", "127.0.0.1", down), Target("pop3", "127.0.0.1", stranger))
    status, body = get(f"{web_server.url}/readyz")
    assert status == 503
    checks = body["checks"]
    assert body["status"] == "not ready"
    assert checks["database"] == "ok"
    assert checks[f"smtp@127.0.0.1:{smtp.port}"] == "ok"
    assert checks["broker"].startswith("OperationalError: ")
    assert "refused" in checks["broker"].lower()
    assert checks[f"imap@127.0.0.1:{down}"].startswith("ConnectionRefusedError: ")
    assert checks[f"pop3@127.0.0.1:{stranger}"] == "unexpected greeting b'SSH-2.0-OpenSSH_9.2\\r\\n'"


def test_a_listener_is_checked_from_its_start_until_it_is_closed() -> None:
    closed = []

    async def close() -> None:
        closed.append(True)

    listener = runtime.readiness_checked(runtime.Listener("imap", "127.0.0.1", 1143, close))
    assert Target("imap", "127.0.0.1", 1143) in checks.started()
    asyncio.run(listener.close())
    assert closed == [True]
    assert Target("imap", "127.0.0.1", 1143) not in checks.started()


def test_the_health_command_checks_a_services_listeners_on_their_ports(listeners, settings, capsys) -> None:
    started = listeners("smtpd")
    settings.MAILSITE_SMTP_PORT = started["smtp"].port
    settings.MAILSITE_SUBMISSION_PORT = started["submission"].port
    settings.MAILSITE_SMTPS_PORT = started["smtps"].port
    call_command("health", "smtpd")
    lines = capsys.readouterr().out.splitlines()
    assert "database: ok" in lines
    assert "broker: ok" in lines
    assert f"smtps@127.0.0.1:{started['smtps'].port}: ok" in lines


def test_the_health_command_fails_with_exit_status_1_and_says_why(transactional_db, settings, capsys) -> None:
    port = closed_port()
    settings.MAILSITE_POP3_PORT = port
    settings.MAILSITE_POP3S_PORT = closed_port()
    with pytest.raises(CommandError) as raised:
        call_command("health", "pop3d")
    assert raised.value.returncode == 1
    assert "pop3@127.0.0.1" in str(raised.value)
    lines = capsys.readouterr().out.splitlines()
    assert f"pop3@127.0.0.1:{port}: ConnectionRefusedError: [Errno 111] Connection refused" in lines
