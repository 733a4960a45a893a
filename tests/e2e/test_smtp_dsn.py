"""DSN (RFC 3461) and REQUIRETLS (RFC 8689) parameters on the listeners: offered, checked, and kept on the queue
for the relay; a local recipient's NOTIFY=SUCCESS answered with a "delivered" notice."""

from __future__ import annotations

import smtplib
from email import message_from_bytes
from email import policy as email_policy

import pytest

from mailboxes.models import Message, Role
from relay.models import OutboundMessage
from tests.conftest import PASSWORD
from tests.smtp_support import mail, stored


@pytest.fixture
def started(listeners, make_account):
    make_account("alice@example.com")
    make_account("carol@example.com")
    return listeners("smtpd")


def test_submission_keeps_the_requests_on_the_queue_and_reports_local_success(started, tls_client_context):
    with smtplib.SMTP("127.0.0.1", started["submission"].port) as client:
        client.starttls(context=tls_client_context)
        client.ehlo()
        assert client.has_extn("dsn")
        assert client.has_extn("requiretls")  # RFC 8689 3: offered once TLS is on
        client.login("alice@example.com", PASSWORD)
        code, _ = client.mail("alice@example.com", ["RET=HDRS", "ENVID=QQ314159+2Bx", "REQUIRETLS"])
        assert code == 250
        assert client.rcpt("bob@example.net", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;Bob+2Bx@example.net"])[0] == 250
        assert client.rcpt("carol@example.com", ["notify=success", "ORCPT=rfc822;carol@example.com"])[0] == 250
        assert client.rcpt("dave@example.net")[0] == 250
        code, _ = client.data(mail(sender="alice@example.com", to="bob@example.net"))
        assert code == 250

    queued = OutboundMessage.objects.get()
    assert (queued.dsn_ret, queued.dsn_envid, queued.require_tls, queued.tls_optional) == (
        "HDRS",
        "QQ314159+x",
        True,
        False,
    )
    rows = {row.address: (row.dsn_notify, row.dsn_orcpt) for row in queued.recipients.all()}
    assert rows == {"bob@example.net": ("SUCCESS,DELAY", "rfc822;Bob+x@example.net"), "dave@example.net": ("", "")}

    assert len(stored("carol@example.com")) == 1
    [notice] = Message.objects.filter(account__address="alice@example.com", mailbox__role=Role.INBOX)
    report = message_from_bytes(bytes(notice.body.raw), policy=email_policy.default)
    _, status, _ = report.get_payload()
    text = status.as_bytes().decode()
    assert "Original-Envelope-Id: QQ314159+x" in text
    assert "Original-Recipient: rfc822;carol@example.com" in text
    assert "Action: delivered" in text
    assert "bob@example.net" not in text


def test_the_mx_checks_the_parameters(started, raw_smtp):
    session = raw_smtp(started["smtp"].port)
    ehlo = session.command("EHLO client.test")
    assert "250-DSN" in ehlo
    assert "REQUIRETLS" not in ehlo
    assert session.command("MAIL FROM:<carol@remote.test> REQUIRETLS") == "530 5.7.10 REQUIRETLS needs a TLS session"
    assert session.command("MAIL FROM:<carol@remote.test> RET=ALL").startswith("501 5.5.4 Invalid RET")
    assert session.command("MAIL FROM:<carol@remote.test> ENVID=a=b").startswith("501 5.5.4 Invalid ENVID")
    assert session.command("MAIL FROM:<carol@remote.test> FOO=1").startswith("555 ")  # RFC 5321 4.1.1.11
    assert session.command("MAIL FROM:<carol@remote.test> RET=FULL ENVID=e1 SIZE=100").startswith("250")
    assert session.command("RCPT TO:<alice@example.com> NOTIFY=NEVER,DELAY").startswith("501 5.5.4 Invalid NOTIFY")
    assert session.command("RCPT TO:<alice@example.com> ORCPT=a@b").startswith("501 5.5.4 Invalid ORCPT")
    assert session.command("RCPT TO:<alice@example.com> NOTIFY=NEVER ORCPT=rfc822;a@b").startswith("250")
    assert session.command("DATA").startswith("354")
    assert session.command(b"Subject: hi\r\n\r\nhi\r\n.").startswith("250")
    assert len(stored("alice@example.com")) == 1


def test_helo_sessions_get_no_parameters(started, raw_smtp):
    session = raw_smtp(started["smtp"].port)
    session.command("HELO client.test")
    assert session.command("MAIL FROM:<carol@remote.test> RET=FULL").startswith("501 ")


def test_the_mx_tells_a_remote_sender_of_local_delivery_under_requiretls(started, tls_client_context):
    with smtplib.SMTP("127.0.0.1", started["smtp"].port) as client:
        client.starttls(context=tls_client_context)
        client.ehlo()
        assert client.has_extn("requiretls")
        assert client.mail("carol@remote.test", ["REQUIRETLS", "ENVID=mx1"])[0] == 250
        assert client.rcpt("alice@example.com", ["NOTIFY=SUCCESS"])[0] == 250
        assert client.data(mail(sender="carol@remote.test", to="alice@example.com"))[0] == 250

    assert len(stored("alice@example.com")) == 1
    # The "delivered" notice goes back to the remote sender through the queue, itself under REQUIRETLS (RFC 8689
    # 5) and with the headers only.
    notice = OutboundMessage.objects.get()
    assert (notice.sender, notice.require_tls) == ("", True)
    assert [row.address for row in notice.recipients.all()] == ["carol@remote.test"]
    raw = bytes(notice.raw)
    assert b"Action: delivered" in raw
    assert b"Original-Envelope-Id: mx1" in raw
    assert b"text/rfc822-headers" in raw
