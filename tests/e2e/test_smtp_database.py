"""The database goes away in the middle of a transaction: 451, nothing stored, and a retry succeeds."""

from __future__ import annotations

import smtplib

import psycopg
import pytest
from django.db import connection

from mailboxes.models import Message, MessageBody
from tests.smtp_support import mail


def _allow_connections(allowed: bool) -> None:
    """Open or close the test database, from the maintenance database (a database cannot close itself)."""
    params = connection.get_connection_params()
    name = connection.settings_dict["NAME"]
    admin = {key: params[key] for key in ("host", "port", "user", "password") if params.get(key)}
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            # Every open connection (the listener's database threads, this test's own) is cut.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
    if allowed:
        connection.close()  # this test's own connection was cut too; reconnect on next use


def test_database_down_gives_451_and_retry_succeeds(listeners, make_account):
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    make_account("alice@example.com")
    port = listeners("smtpd")["smtp"].port
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        assert client.mail("carol@remote.test")[0] == 250
        assert client.rcpt("alice@example.com")[0] == 250
        _allow_connections(False)
        try:
            code, text = client.data(mail())
            assert (code, text) == (451, b"4.3.0 Temporary failure, please try again later")
            assert client.rset()[0] == 250
            assert client.mail("carol@remote.test")[0] == 250
            code, _ = client.rcpt("alice@example.com")
            assert code == 451
        finally:
            _allow_connections(True)
        assert (Message.objects.count(), MessageBody.objects.count()) == (0, 0)
        client.rset()
        client.sendmail("carol@remote.test", ["alice@example.com"], mail())
    assert Message.objects.count() == 1
