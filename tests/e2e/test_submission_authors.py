"""Parse once: the author a submission is authorised for is the one the relay signs for, and a From: that two
readers would take differently is refused. Two tenants on one server: a.example (alice) and b.example (ceo)."""

from __future__ import annotations

import smtplib

import dkim as dkimpy
import pytest

from mailboxes.models import Domain
from relay import dkim
from relay.models import OutboundMessage
from tests.conftest import PASSWORD


@pytest.fixture
def submission(listeners, make_account, tls_client_context):
    make_account("alice@a.example")
    make_account("ceo@b.example")
    port = listeners("smtpd")["submission"].port

    def send(header: bytes, rcpt: str = "bob@remote.example") -> tuple[int, bytes]:
        raw = header + b"To: " + rcpt.encode() + b"\r\nSubject: quarterly\r\n\r\nfigures\r\n"
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.starttls(context=tls_client_context)
            client.login("alice@a.example", PASSWORD)
            client.mail("alice@a.example")
            client.rcpt(rcpt)
            return client.data(raw)

    return send


@pytest.mark.parametrize(
    "from_field",
    [
        b"From: ceo@b.example <alice@a.example>\r\n",
        b'From: "ceo@b.example" <alice@a.example>\r\n',
        b"From: =?utf-8?q?ceo=40b.example?= <alice@a.example>\r\n",
        b"From: alice@a.example (unbalanced comment\r\n",
        b"From: <alice@a.example\r\n",
        b"From: alice@a.example, alice+x@a.example\r\n",
        b"From: alice@a.example\r\nFrom: ceo@b.example\r\n",
        b"From: team: alice@a.example;\r\n",
        b"From: alice@a.example <ceo@b.example>\r\n",
    ],
)
def test_a_from_read_two_ways_is_refused_and_nothing_is_queued(submission, from_field):
    code, reply = submission(from_field)
    assert code == 553
    assert reply.startswith(b"5.7.1 ")
    assert not OutboundMessage.objects.exists()


def test_another_tenants_author_is_refused(submission):
    code, _ = submission(b"From: ceo@b.example\r\n")
    assert code == 553
    assert not OutboundMessage.objects.exists()


def _verify(raw: bytes) -> bool:
    records = {}
    for domain in Domain.objects.all():
        name, value = dkim.txt_record(dkim.key_for(domain))
        records[name.encode() + b"."] = value.encode()
    return dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: records.get(name))


@pytest.mark.parametrize(
    "from_field",
    [b"From: alice@a.example\r\n", b"From: Alice <alice@a.example>\r\n", b"From: alice+news@a.example\r\n"],
)
def test_own_author_is_signed_for_its_domain_only(submission, from_field):
    code, _ = submission(from_field)
    assert code == 250
    raw = bytes(OutboundMessage.objects.get().raw)
    signatures = [line for line in raw.split(b"\r\n") if line.startswith(b"DKIM-Signature:")]
    assert len(signatures) == 1
    assert b" d=a.example;" in raw.split(b"\r\n\r\n")[0].replace(b"\r\n", b"")
    assert _verify(raw)
