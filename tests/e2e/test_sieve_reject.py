"""ereject and reject in the SMTP dialogue (RFC 5429 2.1.1), over the MX's socket with smtplib: a message every
recipient's script rejects is refused at DATA with 550 5.7.1 and the script's reason, and nothing is kept or
sent; when only some recipients reject, the others get it and the sender a rejection notice (2.1.2)."""

from __future__ import annotations

import smtplib

import pytest

from mailboxes import actions
from mailboxes.models import Message, MessageBody
from relay.models import OutboundMessage
from sieve import scripts

pytestmark = pytest.mark.slow

EREJECT = 'require "ereject"; if header :contains "subject" "offer" { ereject "No offers, thank you."; }'
# A reason over two lines with non-ASCII text: the reply carries it on one line of ASCII.
REJECT = 'require "reject"; reject text:\r\nJe suis absent.\r\nMerci — au revoir\r\n.\r\n;'


def mail(subject: str, to: str) -> bytes:
    head = f"From: bob@example.net\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x>\r\n"
    return (head + "\r\nHi.\r\n").encode()


def test_rejected_by_every_recipient_is_refused_at_data(listeners, make_account):
    erin = make_account("erin@example.com")
    dave = make_account("dave@example.com")
    carol = make_account("carol@example.com")
    scripts.put_script(erin, "rules", EREJECT, activate=True)
    scripts.put_script(dave, "rules", REJECT, activate=True)
    port = listeners("smtpd")["smtp"].port

    with smtplib.SMTP("127.0.0.1", port) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("bob@example.net", [erin.address], mail("offer 1", erin.address))
        assert (refused.value.smtp_code, refused.value.smtp_error) == (550, b"5.7.1 No offers, thank you.")
        # Both recipients reject (one with ereject, one with reject): still one refusal for the transaction.
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("bob@example.net", [dave.address, erin.address], mail("offer 2", dave.address))
        assert (refused.value.smtp_code, refused.value.smtp_error) == (550, b"5.7.1 Je suis absent. Merci ? au revoir")
        # The session goes on: the next message is taken.
        client.sendmail("bob@example.net", [erin.address], mail("hello", erin.address))
        # Only erin rejects: carol gets it, and bob a notice for erin.
        client.sendmail("bob@example.net", [erin.address, carol.address], mail("offer 3", erin.address))

    assert list(Message.objects.filter(account=erin).values_list("subject", flat=True)) == ["hello"]
    assert not Message.objects.filter(account=dave).exists()
    assert list(Message.objects.filter(account=carol).values_list("subject", flat=True)) == ["offer 3"]
    assert MessageBody.objects.count() == 2
    [notice] = OutboundMessage.objects.all()
    assert notice.sender == ""
    assert list(notice.recipients.values_list("address", flat=True)) == ["bob@example.net"]
    raw = bytes(notice.raw)
    assert b"Final-Recipient: rfc822; erin@example.com" in raw
    assert b"No offers, thank you." in raw
    assert b"Subject: offer 3" in raw


def test_an_alias_is_refused_only_when_every_account_behind_it_rejects(listeners, make_account):
    erin = make_account("erin@example.com")
    carol = make_account("carol@example.com")
    actions.create_alias("team@example.com", [erin.address, carol.address])
    actions.create_alias("erins@example.com", [erin.address])
    scripts.put_script(erin, "rules", EREJECT, activate=True)
    port = listeners("smtpd")["smtp"].port

    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("bob@example.net", ["team@example.com"], mail("offer 1", "team@example.com"))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("bob@example.net", ["erins@example.com"], mail("offer 2", "erins@example.com"))
        assert refused.value.smtp_code == 550

    assert not Message.objects.filter(account=erin).exists()
    assert list(Message.objects.filter(account=carol).values_list("subject", flat=True)) == ["offer 1"]
    [notice] = OutboundMessage.objects.all()
    assert b"Subject: offer 1" in bytes(notice.raw)
