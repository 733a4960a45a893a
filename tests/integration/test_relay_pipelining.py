"""The relay's SMTP client over real sockets against aiosmtpd sinks offering PIPELINING (RFC 2920) and CHUNKING
(RFC 3030): one write for the envelope, every recipient's reply where it belongs, BDAT chunks, and sessions that
fail in the middle of a pipelined group losing and duplicating nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relay import deliver
from relay.deliver import Reply
from tests.relay_support import Sinks, address

pytestmark = pytest.mark.xdist_group("relay-pipelining")

MX1, MX2 = address(30), address(31)
RAW = b"From: a@example.com\r\nSubject: pipelined\r\n\r\n.a line with a leading dot\r\nbody\r\n"


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    started = Sinks()
    yield started
    started.stop_all()


def send(sinks: Sinks, recipients: list[str], raw: bytes = RAW, *, reuse: deliver.Connection | None = None):
    return deliver.attempt(
        [("mx1.example.net", MX1), ("mx2.example.net", MX2)],
        "a@example.com",
        recipients,
        raw,
        helo="relay.mailsite.test",
        port=sinks.port,
        timeout=3,
        reuse=reuse,
    )


def test_pipelined_group_with_a_refused_recipient(sinks):
    sink = sinks.start(MX1)
    sink.extensions = ("PIPELINING",)
    sink.rcpt_replies["c@example.net"] = "550 5.1.1 no such user"

    replies, connection = send(sinks, ["b@example.net", "c@example.net", "d@example.net"])

    # MAIL, the RCPTs and DATA came in one write: all of it had arrived when MAIL was read.
    assert sink.ahead_of_mail == [
        b"RCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n"
    ]
    assert replies == {
        "b@example.net": Reply(250, "2.0.0 OK queued", "mx1.example.net"),
        "c@example.net": Reply(550, "5.1.1 no such user", "mx1.example.net"),
        "d@example.net": Reply(250, "2.0.0 OK queued", "mx1.example.net"),
    }
    [received] = sink.messages
    assert received.rcpt_tos == ["b@example.net", "d@example.net"]
    assert received.content == RAW
    assert received.tls

    # The kept session's next transaction starts with RSET, in the same write.
    assert connection is not None
    replies, again = send(sinks, ["e@example.net"], reuse=connection)
    assert again is connection
    assert sink.sessions == 1
    assert replies["e@example.net"].code == 250
    assert len(sink.messages) == 2
    connection.close()


def test_every_recipient_refused_sends_no_message_and_keeps_the_session(sinks):
    sink = sinks.start(MX1)
    sink.extensions = ("PIPELINING",)
    sink.rcpt_replies["b@example.net"] = "550 5.1.1 no such user"

    replies, connection = send(sinks, ["b@example.net"])

    assert replies == {"b@example.net": Reply(550, "5.1.1 no such user", "mx1.example.net")}
    assert sink.messages == []
    assert connection is not None  # the pipelined DATA got its 503: the session is in step
    connection.close()


def test_mail_refused_permanently_is_every_recipients_reply(sinks):
    sink = sinks.start(MX1)
    second = sinks.start(MX2)
    sink.extensions = ("PIPELINING",)
    sink.mail_reply = "550 5.7.1 sender blocked"

    replies, connection = send(sinks, ["b@example.net", "c@example.net"])

    assert {rcpt: (reply.code, reply.text) for rcpt, reply in replies.items()} == {
        "b@example.net": (550, "5.7.1 sender blocked"),
        "c@example.net": (550, "5.7.1 sender blocked"),
    }
    assert connection is None
    assert sink.messages == []
    assert second.messages == []
    assert second.sessions == 0


def test_connection_cut_mid_pipeline_sends_every_recipient_to_the_next_mx_once(sinks):
    first = sinks.start(MX1)
    second = sinks.start(MX2)
    first.extensions = second.extensions = ("PIPELINING",)
    first.drop_at_rcpt = 2

    replies, connection = send(sinks, ["b@example.net", "c@example.net", "d@example.net"])

    assert first.dropped == 1
    assert first.messages == []
    assert {rcpt: (reply.code, reply.host) for rcpt, reply in replies.items()} == {
        rcpt: (250, "mx2.example.net") for rcpt in ["b@example.net", "c@example.net", "d@example.net"]
    }
    [received] = second.messages
    assert received.rcpt_tos == ["b@example.net", "c@example.net", "d@example.net"]
    assert connection is not None
    connection.close()


def test_kept_session_found_closed_at_its_pipelined_rset_goes_afresh(sinks):
    sink = sinks.start(MX1)
    sink.extensions = ("PIPELINING",)
    sink.hangup_after = 1
    _, connection = send(sinks, ["b@example.net"])

    replies, after = send(sinks, ["c@example.net"], reuse=connection)

    assert replies["c@example.net"].code == 250
    assert after is not connection
    assert sink.sessions == 2
    assert sink.dropped == 1
    assert [received.rcpt_tos for received in sink.messages] == [["b@example.net"], ["c@example.net"]]
    assert after is not None
    after.close()


@pytest.mark.parametrize("size", [0, 3 * 1024 * 1024 // 2])
def test_chunking_sends_the_message_in_bdat_chunks(sinks, size):
    sink = sinks.start(MX1)
    sink.extensions = ("PIPELINING", "CHUNKING")
    raw = RAW + b"x" * size

    replies, connection = send(sinks, ["b@example.net"], raw)

    assert replies["b@example.net"].code == 250
    [received] = sink.messages
    assert received.content == raw  # byte for byte: no dot-stuffing with BDAT
    assert sink.chunks == (2 if size else 1)
    assert connection is not None
    connection.close()


def test_without_pipelining_or_chunking_the_classic_dialogue(sinks):
    sink = sinks.start(MX1)
    sink.rcpt_replies["c@example.net"] = "450 4.2.1 try later"

    replies, connection = send(sinks, ["b@example.net", "c@example.net"])

    assert sink.ahead_of_mail == [b""]  # MAIL came alone
    assert replies["b@example.net"].code == 250
    assert replies["c@example.net"].code == 450
    assert sink.messages[0].content == RAW
    assert sink.chunks == 0
    assert connection is not None
    connection.close()
