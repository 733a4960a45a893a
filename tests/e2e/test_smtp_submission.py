"""Submission listeners: STARTTLS (MAILSITE_SUBMISSION_PORT) and implicit TLS (MAILSITE_SMTPS_PORT)."""

from __future__ import annotations

import asyncio
import smtplib

import aiosmtplib
import pytest

from mailboxes import actions
from mailboxes.models import Message
from tests.conftest import PASSWORD
from tests.smtp_support import mail, stored


@pytest.fixture
def ports(listeners, make_account):
    make_account("alice@example.com")
    make_account("bob@example.com")
    started = listeners("smtpd")
    return started["submission"].port, started["smtps"].port


def test_nothing_before_tls_and_auth(ports, raw_smtp, tls_client_context):
    submission, _ = ports
    session = raw_smtp(submission)
    ehlo = session.command("EHLO client.test")
    assert "STARTTLS" in ehlo
    assert "AUTH" not in ehlo
    assert session.command("MAIL FROM:<alice@example.com>").startswith("530 5.7.0 ")
    assert session.command("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHg=").startswith("530 5.7.0 ")
    with smtplib.SMTP("127.0.0.1", submission) as client:
        client.starttls(context=tls_client_context)
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        assert client.mail("alice@example.com")[0] == 530
        assert client.rcpt("bob@example.com")[0] == 530


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_and_send_over_starttls(ports, tls_client_context, mechanism):
    submission, _ = ports
    with smtplib.SMTP("127.0.0.1", submission) as client:
        client.starttls(context=tls_client_context)
        client.ehlo()
        client.user, client.password = "alice@example.com", PASSWORD
        code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        assert code == 235
        client.sendmail(
            "alice@example.com", ["bob@example.com"], mail(sender="alice@example.com", to="bob@example.com")
        )
    [raw] = stored("bob@example.com")
    assert b"with ESMTPSA (TLSv1.3) id" in raw


def test_auth_failure(ports, tls_client_context):
    _, smtps = ports
    with smtplib.SMTP_SSL("127.0.0.1", smtps, context=tls_client_context) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            client.login("alice@example.com", "wrong password")
        assert (failed.value.smtp_code, failed.value.smtp_error[:5]) == (535, b"5.7.8")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("alice@example.com", ["bob@example.com"], mail())
        assert refused.value.smtp_code == 530


def test_implicit_tls_with_aiosmtplib(ports, tls_client_context):
    _, smtps = ports

    async def send() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtps, use_tls=True, tls_context=tls_client_context) as c:
            await c.login("alice@example.com", PASSWORD)
            await c.sendmail("alice@example.com", ["bob@example.com"], mail(sender="alice@example.com"))

    asyncio.run(send())
    assert len(stored("bob@example.com")) == 1


def login(port: int, context) -> smtplib.SMTP_SSL:
    client = smtplib.SMTP_SSL("127.0.0.1", port, context=context)
    client.login("alice@example.com", PASSWORD)
    return client


def test_only_own_addresses_as_sender_and_from(ports, tls_client_context):
    _, smtps = ports
    actions.create_alias("sales@example.com", ["alice@example.com", "bob@example.com"])
    with login(smtps, tls_client_context) as client:
        code, text = client.mail("bob@example.com")
        assert (code, text[:5]) == (553, b"5.7.1")
        client.rset()
        assert client.mail("<>")[0] == 553
        client.rset()
        with pytest.raises(smtplib.SMTPDataError) as forged:
            client.sendmail("alice@example.com", ["bob@example.com"], mail(sender="Bob <bob@example.com>"))
        assert (forged.value.smtp_code, forged.value.smtp_error[:5]) == (553, b"5.7.1")
        client.sendmail("sales@example.com", ["bob@example.com"], mail("alias", sender="Sales <sales@example.com>"))
        client.sendmail("alice+news@example.com", ["bob@example.com"], mail("tag", sender="alice@example.com"))
    assert [m.subject for m in Message.objects.filter(account__address="bob@example.com")] == ["alias", "tag"]


def test_remote_recipients_are_accepted_for_the_relay(ports, tls_client_context):
    _, smtps = ports
    with login(smtps, tls_client_context) as client:
        client.mail("alice@example.com")
        code, text = client.rcpt("someone@elsewhere.test")
        assert (code, text[:5]) == (250, b"2.1.5")
        assert client.rcpt("bob@example.com")[0] == 250


def test_message_id_and_date_added_and_bcc_removed(ports, tls_client_context, make_account):
    _, smtps = ports
    make_account("carol@example.com")
    bare = b"From: alice@example.com\r\nTo: bob@example.com\r\nBcc: carol@example.com\r\nSubject: s\r\n\r\nbody\r\n"
    with login(smtps, tls_client_context) as client:
        client.sendmail("alice@example.com", ["bob@example.com", "carol@example.com"], bare)
    for address in ("bob@example.com", "carol@example.com"):
        [raw] = stored(address)
        assert b"\r\nMessage-ID: <" in raw
        assert b"\r\nDate: " in raw
        assert b"Bcc" not in raw
        assert raw.endswith(b"To: bob@example.com\r\nSubject: s\r\n\r\nbody\r\n")
    kept = mail("kept", sender="alice@example.com", extra="Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n")
    with login(smtps, tls_client_context) as client:
        client.sendmail("alice@example.com", ["bob@example.com"], kept)
    raw = stored("bob@example.com")[-1]
    assert raw.count(b"Message-ID:") == 1
    assert raw.count(b"Date:") == 1


def test_repeated_failures_are_throttled(ports, tls_client_context, settings):
    _, smtps = ports
    settings.MAILSITE_AUTH_MAX_FAILURES = 2
    codes = []
    with smtplib.SMTP_SSL("127.0.0.1", smtps, context=tls_client_context) as client:
        client.ehlo()
        for password in ("wrong", "also wrong", PASSWORD):
            client.user, client.password = "alice@example.com", password
            with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
                client.auth("PLAIN", client.auth_plain)
            codes.append((failed.value.smtp_code, failed.value.smtp_error[:5]))
    # After two failures even the right password is refused for a while, with a temporary code (RFC 4954 6).
    assert codes == [(535, b"5.7.8"), (535, b"5.7.8"), (454, b"4.7.0")]


def test_a_mailbox_full_at_data_gets_the_sender_a_dsn(ports, make_account, tls_client_context):
    make_account("small@example.com", quota_bytes=2000)
    _, smtps = ports
    big = mail("too big for small", sender="alice@example.com", body=("z" * 70 + "\r\n") * 40)
    with smtplib.SMTP_SSL("127.0.0.1", smtps, context=tls_client_context) as client:
        client.login("alice@example.com", PASSWORD)
        client.mail("alice@example.com")  # no SIZE: both recipients pass RCPT
        assert client.rcpt("bob@example.com")[0] == 250
        assert client.rcpt("small@example.com")[0] == 250
        assert client.data(big)[0] == 250
    assert len(stored("bob@example.com")) == 1
    assert stored("small@example.com") == []
    [dsn] = stored("alice@example.com")
    assert b"Final-Recipient: rfc822; small@example.com\r\nAction: failed\r\nStatus: 5.2.2" in dsn
