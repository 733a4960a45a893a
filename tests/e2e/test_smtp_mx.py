"""The MX listener end to end: real listener, real PostgreSQL, smtplib/aiosmtplib and raw sockets."""

from __future__ import annotations

import asyncio
import logging
import smtplib

import aiosmtplib
import pytest

from mailboxes import actions
from mailboxes.models import Message, MessageBody
from relay.models import OutboundRecipient
from tests.smtp_support import mail, stored


@pytest.fixture
def mx(listeners, make_account):
    make_account("alice@example.com")
    return listeners("smtpd")["smtp"].port


def test_delivery_adds_trace_headers_and_logs_one_line(mx, caplog):
    caplog.set_level(logging.INFO, logger="smtpd")
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.ehlo("client.remote.test")
        client.mail("carol@remote.test")
        client.rcpt("alice@example.com")
        code, reply = client.data(mail())
    assert code == 250
    assert reply.startswith(b"2.0.0 Ok: queued as ")
    queue_id = reply.split()[-1].decode()
    [raw] = stored("alice@example.com")
    assert raw.startswith(b"Return-Path: <carol@remote.test>\r\nReceived: from client.remote.test ([127.0.0.1])\r\n")
    assert f"with ESMTP id {queue_id}\r\n\tfor <alice@example.com>;".encode() in raw
    assert raw.endswith(mail())
    lines = [r.getMessage() for r in caplog.records if "queue_id=" + queue_id in r.getMessage()]
    assert len(lines) == 1
    assert "sender=<carol@remote.test> recipients=alice@example.com size=" in lines[0]
    assert "result='250 2.0.0 Ok: queued as" in lines[0]


def test_ehlo_advertises_extensions_and_no_auth(mx):
    with smtplib.SMTP("127.0.0.1", mx) as client:
        code, text = client.ehlo()
    assert code == 250
    for extension in ("size 26214400", "8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes", "starttls"):
        assert extension in text.decode().lower().splitlines()
    assert not client.has_extn("auth")


def test_every_command(mx, raw_smtp):
    session = raw_smtp(mx)
    assert session.greeting.startswith("220 mx.mailsite.test ESMTP")
    assert session.command("HELO client.test") == "250 mx.mailsite.test"
    assert session.command("NOOP") == "250 2.0.0 OK"
    # VRFY never tells whether a user exists (RFC 5321 7.3); EXPN is not offered.
    assert session.command("VRFY alice@example.com") == session.command("VRFY nobody@example.com")
    assert session.command("VRFY nobody@example.com").startswith("252 2.0.0 ")
    assert session.command("EXPN staff").startswith("502 5.5.1 ")
    assert session.command("HELP").startswith("214 2.0.0 ")
    assert session.command("MAIL FROM:<carol@remote.test>") == "250 2.1.0 Sender ok"
    assert session.command("RSET") == "250 2.0.0 OK"
    assert session.command("RCPT TO:<alice@example.com>").startswith("503 5.5.1 ")
    assert session.command("DATA").startswith("503 5.5.1 ")
    assert session.command("FOO").startswith("500 5.5.2 ")
    assert session.command("QUIT").startswith("221 2.0.0 ")
    assert session.closed()


def test_null_sender_is_accepted(mx):
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.sendmail("<>", ["alice@example.com"], mail("bounce"))
    assert stored("alice@example.com")[0].startswith(b"Return-Path: <>\r\n")


def test_recipient_replies(mx, raw_smtp, make_account):
    make_account("full@example.com", quota_bytes=10)
    session = raw_smtp(mx)
    session.command("EHLO client.test")
    session.command("MAIL FROM:<carol@remote.test> SIZE=100")
    assert session.command("RCPT TO:<nobody@example.com>").startswith("550 5.1.1 ")
    assert session.command("RCPT TO:<someone@elsewhere.test>").startswith("554 5.7.1 ")
    assert session.command("RCPT TO:<full@example.com>").startswith("452 4.2.2 ")
    assert session.command("RCPT TO:<alice@example.com>").startswith("250 2.1.5 ")


def test_mailbox_full_at_data_time(mx, make_account):
    make_account("small@example.com", quota_bytes=2000)
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.ehlo()
        client.mail("carol@remote.test")  # no SIZE: RCPT cannot tell that the message will not fit
        assert client.rcpt("small@example.com")[0] == 250
        code, text = client.data(mail(body=("z" * 70 + "\r\n") * 40))
    assert (code, text[:5]) == (452, b"4.2.2")
    assert stored("small@example.com") == []


def test_full_mailbox_among_others_gets_a_bounce(mx, make_account):
    make_account("small@example.com", quota_bytes=2000)
    make_account("dave@example.com")
    big = mail("too big for small", sender="dave@example.com", body=("z" * 70 + "\r\n") * 40)
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.ehlo()
        for sender in ("dave@example.com", "carol@remote.test"):
            client.mail(sender)  # no SIZE: both recipients pass RCPT
            assert client.rcpt("alice@example.com")[0] == 250
            assert client.rcpt("small@example.com")[0] == 250
            assert client.data(big)[0] == 250
    assert len(stored("alice@example.com")) == 2
    assert stored("small@example.com") == []
    # The local sender finds a DSN in the Inbox; the remote one is sent a DSN through the outbound queue.
    [dsn] = stored("dave@example.com")
    assert dsn.startswith(b"Return-Path: <>\r\n")
    assert b"Final-Recipient: rfc822; small@example.com\r\nAction: failed\r\nStatus: 5.2.2" in dsn
    [queued] = OutboundRecipient.objects.select_related("message")
    assert (queued.address, queued.message.sender) == ("carol@remote.test", "")


def test_more_than_100_recipients(mx, raw_smtp):
    session = raw_smtp(mx)
    session.command("EHLO client.test")
    session.command("MAIL FROM:<carol@remote.test>")
    # alice+N are distinct recipients of one account (RFC 5321 4.5.3.1.8 asks for at least 100).
    session.send(b"".join(f"RCPT TO:<alice+{n}@example.com>\r\n".encode() for n in range(101)))
    replies = [session.reply() for _ in range(101)]
    assert all(r.startswith("250 2.1.5") for r in replies[:100])
    assert replies[100].startswith("452 4.5.3 ")


def test_three_recipients_and_an_alias_share_one_body(mx, make_account):
    make_account("bob@example.com")
    make_account("dave@example.com")
    actions.create_alias("team@example.com", ["alice@example.com", "bob@example.com"])
    actions.create_alias("@example.com", ["dave@example.com"])  # catch-all
    actions.create_alias("ext@example.com", ["alice@example.com", "friend@elsewhere.test"])
    with smtplib.SMTP("127.0.0.1", mx) as client:
        refused = client.sendmail(
            "carol@remote.test",
            [
                "alice@example.com",
                "bob@example.com",
                "dave@example.com",
                "team@example.com",
                "typo@example.com",
                "ext@example.com",
            ],
            mail("team news"),
        )
    assert refused == {}
    assert MessageBody.objects.count() == 1
    assert sorted(Message.objects.values_list("account__address", flat=True)) == [
        "alice@example.com",
        "bob@example.com",
        "dave@example.com",
    ]
    # The external destination of an alias goes to the outbound queue with the original envelope sender.
    [queued] = OutboundRecipient.objects.select_related("message")
    assert (queued.address, queued.message.sender) == ("friend@elsewhere.test", "carol@remote.test")


def test_pipelined_transaction(mx, raw_smtp):
    session = raw_smtp(mx)
    session.command("EHLO client.test")
    session.send(
        b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n"
    )
    replies = [session.reply() for _ in range(4)]
    assert [r[:3] for r in replies] == ["250", "250", "550", "354"]
    session.send(mail("pipelined") + b".\r\nMAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
    assert session.reply().startswith("250 2.0.0 Ok: queued as")
    assert [session.reply()[:3] for _ in range(3)] == ["250", "250", "354"]
    assert session.command(mail("second") + b".").startswith("250 2.0.0")
    assert len(stored("alice@example.com")) == 2


def test_replies_held_for_pipelined_commands_are_sent_once_the_client_waits(mx, raw_smtp):
    # The replies to MAIL and RCPT may wait while more commands are already here (RFC 2920 3.2), but never once
    # the input runs dry: here the batch ends without DATA, and the client waits for both.
    session = raw_smtp(mx)
    session.command("EHLO client.test")
    session.send(b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.com>\r\n")
    assert [session.reply()[:3] for _ in range(2)] == ["250", "250"]
    session.send(b"RSET\r\nMAIL FROM:<carol@remote.test>\r\nRCPT TO:<alice@example.com>\r\nQUIT\r\n")
    assert [session.reply()[:3] for _ in range(4)] == ["250", "250", "250", "221"]


def test_mail_loop_is_refused(mx):
    hops = "".join(
        f"Received: from hop{n}.test by hop{n + 1}.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n" for n in range(50)
    )
    with smtplib.SMTP("127.0.0.1", mx) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("carol@remote.test", ["alice@example.com"], hops.encode() + mail())
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (554, b"5.4.6")
        client.sendmail("carol@remote.test", ["alice@example.com"], hops.partition("\r\n")[2].encode() + mail())
    assert len(stored("alice@example.com")) == 1


def test_bad_addresses(mx, raw_smtp):
    session = raw_smtp(mx)
    session.command("EHLO client.test")
    assert session.command(b"MAIL FROM:<car\x00ol@remote.test>").startswith("501 5.1.7")
    assert session.command(b"MAIL FROM:<car\rol@remote.test>").startswith("501 5.1.7")
    assert session.command("MAIL FROM:<" + "x" * 65 + "@remote.test>").startswith("501 ")
    assert session.command("MAIL FROM:<carol@remote.test>").startswith("250")
    assert session.command(b"RCPT TO:<ali\x00ce@example.com>").startswith("501 5.1.7")
    assert session.command("RCPT TO:<" + "a" * 65 + "@example.com>").startswith("501 ")
    assert session.command("RCPT TO:<alicé@example.com>").startswith("553 5.6.7")  # no SMTPUTF8 on MAIL


def test_line_length_limits(mx, raw_smtp, caplog):
    caplog.set_level(logging.INFO, logger="smtpd")
    session = raw_smtp(mx)
    session.command("EHLO client.test")
    assert session.command("NOOP " + "x" * 520).startswith("500 5.5.2 ")
    assert session.command("NOOP " + "x" * 5000).startswith("500 5.5.2 ")
    session.command("MAIL FROM:<carol@remote.test>")
    session.command("RCPT TO:<alice@example.com>")
    assert session.command("DATA").startswith("354")
    assert session.command(mail(body="y" * 1200 + "\r\n") + b".").startswith("500 5.5.2 ")
    session.command("MAIL FROM:<carol@remote.test>")  # answered after the refused message was logged
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("smtp message refused")]
    assert refused == [
        "smtp message refused client=127.0.0.1 sender=<carol@remote.test> recipients=alice@example.com "
        "result='500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)'"
    ]
    session.command("RCPT TO:<alice@example.com>")
    session.command("DATA")
    assert session.command(mail(body="y" * 998 + "\r\n") + b".").startswith("250 2.0.0")
    assert len(stored("alice@example.com")) == 1


def test_eight_bit_and_smtputf8(mx, make_account):
    make_account("jörg@example.com")
    content = (
        "From: Pelé <pelé@exämple.test>\r\nTo: jörg@example.com\r\nSubject: Grüße\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÄpfel und Birnen\r\n"
    ).encode()

    async def send() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mx, start_tls=False) as client:
            await client.sendmail("pelé@exämple.test", ["jörg@example.com"], content, mail_options=["SMTPUTF8"])
            await client.sendmail("carol@remote.test", ["alice@example.com"], content, mail_options=["BODY=8BITMIME"])

    asyncio.run(send())
    [raw] = stored("jörg@example.com")
    assert raw.startswith("Return-Path: <pelé@exämple.test>\r\n".encode())
    assert raw.endswith(content)
    assert b"with UTF8SMTP id" in raw
    message = Message.objects.get(account__address="jörg@example.com")
    assert (message.from_name, message.from_address, message.subject) == ("Pelé", "pelé@exämple.test", "Grüße")
    assert stored("alice@example.com")[0].endswith(content)


def test_starttls_on_mx(mx, tls_client_context):
    with smtplib.SMTP("127.0.0.1", mx) as client:
        client.starttls(context=tls_client_context)
        client.ehlo()
        assert not client.has_extn("starttls")
        code, text = client.docmd("STARTTLS")
        assert (code, text[:5]) == (503, b"5.5.1")
        client.sendmail("carol@remote.test", ["alice@example.com"], mail())
    assert b"with ESMTPS (TLSv1.3) id" in stored("alice@example.com")[0]


def test_hostile_mime_is_refused_and_malformed_mime_is_stored(mx):
    deep = "".join(f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n' for n in range(101))
    big_header = "".join(f"X-Filler-{n}: {'z' * 900}\r\n" for n in range(120))
    malformed = mail(extra='Content-Type: multipart/mixed; boundary="never"\r\n', body="--nope\r\nbroken\r\n")
    with smtplib.SMTP("127.0.0.1", mx) as client:
        with pytest.raises(smtplib.SMTPDataError) as too_deep:
            client.sendmail("carol@remote.test", ["alice@example.com"], b"Subject: deep\r\n" + deep.encode())
        with pytest.raises(smtplib.SMTPDataError) as too_big:
            client.sendmail("carol@remote.test", ["alice@example.com"], big_header.encode() + mail())
        client.sendmail("carol@remote.test", ["alice@example.com"], malformed)
    assert (too_deep.value.smtp_code, too_deep.value.smtp_error[:5]) == (554, b"5.6.0")
    assert (too_big.value.smtp_code, too_big.value.smtp_error[:5]) == (552, b"5.3.4")
    [raw] = stored("alice@example.com")
    assert raw.endswith(malformed)


def test_internal_failure_is_a_temporary_error_without_details(mx, raw_smtp, monkeypatch):
    def broken(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(actions, "deliver_many", broken)
    session = raw_smtp(mx)
    session.command("EHLO client.test")
    session.command("MAIL FROM:<carol@remote.test>")
    session.command("RCPT TO:<alice@example.com>")
    session.command("DATA")
    reply = session.command(mail() + b".")
    assert reply == "451 4.3.0 Temporary failure, please try again later"
    # The session goes on: the failed transaction is over and a new one can start.
    assert session.command("MAIL FROM:<carol@remote.test>").startswith("250")
