"""/metrics: counters from real SMTP and POP3 sessions and from another process, the queue read at scrape time,
and who may scrape. The exposition is parsed with prometheus-client's own parser."""

from __future__ import annotations

import base64
import imaplib
import json
import logging
import os
import poplib
import smtplib
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from ops.logs import JsonFormatter
from tests.conftest import PASSWORD
from tests.smtp_support import mail

ROOT = Path(__file__).resolve().parents[2]


def scrape(client: Client | None = None, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def mail_listeners(listeners, make_account):
    make_account("alice@example.com")
    return {**listeners("smtpd"), **listeners("pop3d")}


def test_smtp_and_pop3_sessions_are_counted(mail_listeners, tls_client_context) -> None:
    before = scrape()
    smtp, smtps, pop3 = mail_listeners["smtp"].port, mail_listeners["smtps"].port, mail_listeners["pop3"].port
    with smtplib.SMTP("127.0.0.1", smtp) as client:
        client.sendmail("carol@remote.test", ["alice@example.com"], mail("Accepted"))
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail("carol@remote.test", ["alice@example.com"], mail("Loop", extra="Received: x\r\n" * 60))
    with smtplib.SMTP_SSL("127.0.0.1", smtps, context=tls_client_context) as client:
        client.ehlo()
        client.user, client.password = "alice@example.com", "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.auth("PLAIN", client.auth_plain)  # one attempt (login() would try LOGIN after PLAIN)
        client.login("alice@example.com", PASSWORD)
        client.sendmail("alice@example.com", ["dave@remote.test"], mail("Out", sender="alice@example.com"))
    client = poplib.POP3("127.0.0.1", pop3, timeout=10)
    client.user("alice@example.com")
    with pytest.raises(poplib.error_proto):
        client.pass_("wrong")
    client.quit()
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mailsite_connections_total", listener="smtp") == 1
    assert grew("mailsite_connections_total", listener="smtps") == 1
    assert grew("mailsite_connections_total", listener="pop3") == 1
    assert grew("mailsite_auth_total", protocol="smtp", result="failure") == 1
    assert grew("mailsite_auth_total", protocol="smtp", result="success") == 1
    assert grew("mailsite_auth_total", protocol="pop3", result="failure") == 1
    assert grew("mailsite_smtp_messages_total", listener="smtp", result="accepted", code="250 2.0.0") == 1
    assert grew("mailsite_smtp_messages_total", listener="smtp", result="refused", code="554 5.4.6") == 1
    assert grew("mailsite_smtp_messages_total", listener="smtps", result="accepted", code="250 2.0.0") == 1
    assert grew("mailsite_smtp_delivery_seconds_count", listener="smtp") == 2
    assert grew("mailsite_session_seconds_count", listener="smtp") == 1
    assert grew("mailsite_session_seconds_count", listener="smtps") == 1
    assert grew("mailsite_session_seconds_count", listener="pop3") == 1
    assert grew("mailsite_commands_total", protocol="smtp", command="MAIL") == 3
    assert grew("mailsite_commands_total", protocol="smtp", command="AUTH") == 2
    assert grew("mailsite_commands_total", protocol="smtp", command="DATA") == 3
    assert [grew("mailsite_commands_total", protocol="pop3", command=c) for c in ("USER", "PASS", "QUIT")] == [1] * 3
    # The MX message that reached scoring (the looping one was refused before): the engine's verdict.
    verdicts = [key for key in after if key[0] == "mailsite_spam_verdicts_total"]
    assert (
        sum(value(after, name, **dict(labels)) - value(before, name, **dict(labels)) for name, labels in verdicts) == 1
    )
    # The submitted message waits in the outbound queue (no worker runs here): read from the database.
    assert value(after, "mailsite_relay_queue", state="queued") == 1
    assert value(after, "mailsite_relay_queue", state="delivered") == 0


def test_imap_managesieve_and_web_sign_ins_commands_and_idle(listeners, make_account, settings, caplog) -> None:
    make_account("alice@example.com")
    started = {**listeners("imapd"), **listeners("managesieve")}
    before = scrape()
    caplog.set_level(logging.INFO, logger="mailboxes.signin")
    refused = imaplib.IMAP4("127.0.0.1", started["imap"].port)
    with pytest.raises(imaplib.IMAP4.error):
        refused.login("alice@example.com", "wrong")
    refused.logout()
    client = imaplib.IMAP4("127.0.0.1", started["imap"].port)
    client.login("alice@example.com", PASSWORD)
    client.select("INBOX")
    client.send(b"i1 IDLE\r\n")
    assert client.readline().startswith(b"+ ")
    client.send(b"DONE\r\n")
    assert client.readline().startswith(b"i1 OK")
    client.logout()
    with socket.create_connection(("127.0.0.1", started["managesieve"].port), timeout=10) as sock:
        reader = sock.makefile("rb")
        while not reader.readline().startswith(b"OK"):
            pass
        sock.sendall(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(b"\0alice@example.com\0wrong") + b'"\r\n')
        assert reader.readline().startswith(b"NO ")
    assert Client().post("/login/", {"address": "alice@example.com", "password": "wrong"}).status_code == 401
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mailsite_auth_total", protocol="imap", result="failure") == 1
    assert grew("mailsite_auth_total", protocol="imap", result="success") == 1
    assert grew("mailsite_auth_total", protocol="sieve", result="failure") == 1
    assert grew("mailsite_auth_total", protocol="web", result="failure") == 1
    assert grew("mailsite_commands_total", protocol="imap", command="LOGIN") == 2
    assert grew("mailsite_commands_total", protocol="imap", command="SELECT") == 1
    assert grew("mailsite_commands_total", protocol="imap", command="IDLE") == 1
    assert grew("mailsite_commands_total", protocol="sieve", command="AUTHENTICATE") == 1
    assert grew("mailsite_imap_idle_seconds_count") == 1
    # One login line per sign-in, as JSON an operator filters on: protocol, user, client and result fields.
    formatter = JsonFormatter()
    logins = [json.loads(formatter.format(record)) for record in caplog.records if record.msg.startswith("login ")]
    assert [(line["protocol"], line["user"], line["client"], line["result"]) for line in logins] == [
        ("imap", "alice@example.com", "127.0.0.1", "failure"),
        ("imap", "alice@example.com", "127.0.0.1", "success"),
        ("sieve", "alice@example.com", "127.0.0.1", "failure"),
        ("web", "alice@example.com", "127.0.0.1", "failure"),
    ]
    assert all(PASSWORD not in line["message"] and "wrong" not in line["message"] for line in logins)


def test_counters_of_other_processes_and_hosts_are_merged(transactional_db, settings) -> None:
    """Another process, writing where another host's processes write: its counts appear in this scrape."""
    before = scrape()
    other_host = settings.MAILSITE_METRICS_DIR / "other-host"
    # A listener name that no other test counts.
    counting = "import django; django.setup()\nfrom ops import metrics\nmetrics.CONNECTIONS.labels('merged').inc(3)\n"
    subprocess.run(
        [sys.executable, "-c", counting],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PROMETHEUS_MULTIPROC_DIR": str(other_host)},
        timeout=60,
        check=True,
    )
    assert list(other_host.glob("counter_*.db"))
    after = scrape()
    assert (
        value(after, "mailsite_connections_total", listener="merged")
        - value(before, "mailsite_connections_total", listener="merged")
        == 3
    )


def test_metrics_are_open_to_loopback_only(db, settings) -> None:
    settings.MAILSITE_METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 403
    # Through a reverse proxy on this host the socket's address is loopback, the client's is not.
    assert Client().get("/metrics", HTTP_X_FORWARDED_FOR="192.0.2.7").status_code == 403
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200


def test_others_need_the_bearer_token(db, settings) -> None:
    settings.MAILSITE_METRICS_TOKEN = "s3cret-token-for-prometheus"
    outsider = Client(REMOTE_ADDR="192.0.2.7")
    missing = outsider.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token-for-prometheus").status_code == 401
    assert scrape(outsider, HTTP_AUTHORIZATION="Bearer s3cret-token-for-prometheus")


def test_the_web_listener_serves_them(web_server, db) -> None:
    with urllib.request.urlopen(f"{web_server.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {sample.labels["state"] for sample in families["mailsite_relay_queue"].samples} == {
        "queued",
        "deferred",
        "delivered",
        "bounced",
        "held",
    }
