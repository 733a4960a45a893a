"""Sieve at delivery, end to end: mail received on the MX is filed by the recipient's rules, and a vacation reply
goes out once per period through the relay to a loopback SMTP sink, never to the null sender or to lists."""

from __future__ import annotations

import smtplib

import pytest

from mailboxes.models import Mailbox, Message, Role
from relay.models import OutboundMessage, OutboundRecipient, State
from sieve import scripts
from tests.integration.test_relay_delivery import publish_dkim_key, verify_with_dns
from tests.relay_support import MX1, wait_for

pytestmark = pytest.mark.slow

SCRIPT = """require ["fileinto", "mailbox", "imap4flags", "vacation"];
if address :domain :is "from" "newsletter.example" { discard; stop; }
vacation :days 7 :subject "Away" "I am away until Monday.";
if header :contains "subject" "invoice" { addflag "\\\\Flagged"; fileinto :create "Bills"; stop; }
"""


def mail(sender: str, subject: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.com\r\nSubject: {subject}\r\n{extra}"
        f"Message-ID: <{subject.replace(' ', '.')}@example.net>\r\n\r\nHello.\r\n"
    ).encode()


def test_rules_file_and_vacation_answers_once(outside, listeners, make_account):
    dns_server, sinks = outside
    sink = sinks.start(MX1)
    alice = make_account("alice@example.com")
    scripts.put_script(alice, "rules", SCRIPT, activate=True)
    port = listeners("smtpd")["smtp"].port

    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("bob@example.net", ["alice@example.com"], mail("bob@example.net", "Your invoice 42"))
        client.sendmail("bob@example.net", ["alice@example.com"], mail("bob@example.net", "Lunch"))
        client.sendmail("", ["alice@example.com"], mail("mailer-daemon@example.net", "Bounce"))
        digest = mail("list@example.net", "Digest", "List-Id: <l.example.net>\r\n")
        client.sendmail("list@example.net", ["alice@example.com"], digest)
        client.sendmail("news@newsletter.example", ["alice@example.com"], mail("news@newsletter.example", "News"))

    bills = Mailbox.objects.get(account=alice, name="Bills")
    invoice = Message.objects.get(account=alice, subject="Your invoice 42")
    assert (invoice.mailbox_id, invoice.flagged) == (bills.pk, True)
    inbox = set(Message.objects.filter(account=alice, mailbox__role=Role.INBOX).values_list("subject", flat=True))
    assert inbox == {"Lunch", "Bounce", "Digest"}
    assert not Message.objects.filter(subject="News").exists()

    # One reply for bob (two messages, :days 7); none for the null sender, the list or the discarded newsletter.
    wait_for(lambda: OutboundRecipient.objects.filter(address="bob@example.net", state=State.DELIVERED).exists())
    [reply] = sink.messages
    assert reply.mail_from == "<>"
    assert reply.rcpt_tos == ["bob@example.net"]
    assert b"Subject: Away" in reply.content
    assert b"Auto-Submitted: auto-replied" in reply.content
    assert b"In-Reply-To: <Your.invoice.42@example.net>" in reply.content
    publish_dkim_key(dns_server)
    assert verify_with_dns(reply.content, dns_server)
    assert OutboundMessage.objects.count() == 1
