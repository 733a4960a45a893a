"""smtpd.policy: reply decisions from plain values."""

import functools

import pytest

from smtpd import policy


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("250 OK", "250 2.0.0 OK"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("220 Ready to start TLS", "220 2.0.0 Ready to start TLS"),
        ("252 Cannot VRFY user, but will accept message", "252 2.0.0 Cannot VRFY user, but will accept message"),
        ("502 EXPN not implemented", "502 5.5.1 EXPN not implemented"),
        ("503 Error: need MAIL command", "503 5.5.1 Error: need MAIL command"),
        ("501 Syntax: MAIL FROM: <address>", "501 5.5.4 Syntax: MAIL FROM: <address>"),
        ("530 Must issue a STARTTLS command first", "530 5.7.0 Must issue a STARTTLS command first"),
        ("500 Command line too long", "500 5.5.2 Line too long"),
        ("500 Line too long (see RFC5321 4.5.3.1.6)", "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)"),
        ("552 Error: Too much mail data", "552 5.3.4 Message size exceeds fixed maximum message size"),
        (
            "552 Error: message size exceeds fixed maximum message size",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        ),
        ("502 5.5.1 Too many unrecognized commands, goodbye.", "421 4.7.0 Too many errors, closing connection"),
        ("250 Syntax: NOOP [ignored]", "214 2.0.0 Syntax: NOOP [ignored]"),
        ("250 Supported commands: DATA EHLO", "214 2.0.0 Supported commands: DATA EHLO"),
        ("501 Supported commands: DATA EHLO", "501 5.5.4 Unknown topic; supported commands: DATA EHLO"),
        ("550 5.1.1 No such user here", "550 5.1.1 No such user here"),
        ("451 4.3.0 Temporary failure", "451 4.3.0 Temporary failure"),
        ("554 Command refused due to lack of security", "554 5.0.0 Command refused due to lack of security"),
        ("334 VXNlcm5hbWU6", "334 VXNlcm5hbWU6"),
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
        ("503 Already authenticated", "503 5.5.1 Already authenticated"),
    ],
)
def test_every_reply_gets_an_enhanced_code(given, expected):
    assert policy.enhance(given) == expected


@pytest.mark.parametrize(
    ("address", "smtputf8", "code"),
    [
        ("alice@example.com", False, None),
        ("pelé@exämple.com", True, None),
        ("pelé@example.com", False, "553 5.6.7"),
        ("a\x00b@example.com", False, "501 5.1.7"),
        ("a\rb@example.com", True, "501 5.1.7"),
        ("a\nb@example.com", True, "501 5.1.7"),
        ("a\tb@example.com", True, "501 5.1.7"),
        ("x" * 64 + "@example.com", False, None),
        ("x" * 65 + "@example.com", False, "501 5.1.3"),
        ("é" * 33 + "@example.com", True, "501 5.1.3"),  # 66 octets in UTF-8
        ("postmaster", False, "501 5.1.3"),
        ("@example.com", False, "501 5.1.3"),
    ],
)
def test_check_address(address, smtputf8, code):
    reply = policy.check_address(address, smtputf8=smtputf8)
    assert (reply[:9] if reply else None) == code


def test_null_sender_is_always_acceptable():
    assert policy.check_sender("", smtputf8=False) is None
    assert policy.check_sender("a\x00@b.c", smtputf8=False).startswith("501 5.1.7")


@pytest.mark.parametrize(
    ("status", "role", "authenticated", "code"),
    [
        (policy.LOCAL, policy.MX, False, "250 2.1.5"),
        (policy.UNKNOWN, policy.MX, False, "550 5.1.1"),
        (policy.OVER_QUOTA, policy.MX, False, "452 4.2.2"),
        (policy.REMOTE, policy.MX, False, "554 5.7.1"),
        (policy.REMOTE, policy.SUBMISSION, True, "250 2.1.5"),
        (policy.REMOTE, policy.SMTPS, True, "250 2.1.5"),
        (policy.REMOTE, policy.SUBMISSION, False, "554 5.7.1"),
        (policy.LOCAL, policy.SUBMISSION, True, "250 2.1.5"),
    ],
)
def test_rcpt_reply(status, role, authenticated, code):
    assert policy.rcpt_reply(status, role, authenticated=authenticated).startswith(code)


def test_recipient_limit():
    assert policy.too_many_recipients(99) is None
    assert policy.too_many_recipients(100).startswith("452 4.5.3")


def test_loop_threshold():
    assert not policy.loop_detected(49)
    assert policy.loop_detected(50)


def test_sender_allowed_own_aliases_and_tags():
    own = ["alice@example.com", "sales@example.com"]
    assert policy.sender_allowed("Alice@Example.com", own, delimiter="+")
    assert policy.sender_allowed("sales@example.com", own, delimiter="+")
    assert policy.sender_allowed("alice+news@example.com", own, delimiter="+")
    assert not policy.sender_allowed("bob@example.com", own, delimiter="+")
    assert not policy.sender_allowed("", own, delimiter="+")
    assert not policy.sender_allowed("alice+x@example.com", own, delimiter="")


def test_from_header_must_be_own():
    own = ["alice@example.com"]
    assert policy.check_from_header(["alice@example.com"], own, delimiter="+") is None
    assert policy.check_from_header(["alice@example.com", "bob@example.com"], own, delimiter="+").startswith(
        "553 5.7.1"
    )
    assert policy.check_from_header([], own, delimiter="+").startswith("553 5.7.1")


@pytest.mark.parametrize("relayed", [False, True], ids=["mx", "submission"])
def test_delivery_reply(relayed):
    reply = functools.partial(policy.delivery_reply, "Q1", relayed=relayed)
    assert reply({"a": policy.LOCAL, "b": policy.OVER_QUOTA}) == "250 2.0.0 Ok: queued as Q1"
    assert reply({"a": policy.OVER_QUOTA}).startswith("452 4.2.2")
    assert reply({"a": policy.UNKNOWN}).startswith("554 5.5.1")
    if relayed:
        assert reply({"a": policy.REMOTE}) == "250 2.0.0 Ok: queued as Q1"  # queued for the relay
    else:  # the domain stopped being local after RCPT: nothing was stored or queued
        assert reply({"a": policy.REMOTE}).startswith("554 5.5.1")


@pytest.mark.parametrize(
    ("extended", "tls", "authenticated", "smtputf8", "expected"),
    [
        (False, False, False, False, "SMTP"),
        (True, False, False, False, "ESMTP"),
        (True, True, False, False, "ESMTPS"),
        (True, True, True, False, "ESMTPSA"),
        (True, True, True, True, "UTF8SMTPSA"),
    ],
)
def test_with_protocol(extended, tls, authenticated, smtputf8, expected):
    assert policy.with_protocol(extended=extended, tls=tls, authenticated=authenticated, smtputf8=smtputf8) == expected


def test_error_counting():
    assert policy.is_error("550 5.1.1 x")
    assert policy.is_error("451 4.3.0 x")
    assert not policy.is_error("250 2.0.0 x")
    assert not policy.is_error("421 4.7.0 x")
    assert not policy.too_many_errors(9, 10)
    assert policy.too_many_errors(10, 10)


def test_connection_counter():
    counter = policy.ConnectionCounter(2)
    assert counter.acquire("192.0.2.1")
    assert counter.acquire("192.0.2.1")
    assert not counter.acquire("192.0.2.1")
    assert counter.acquire("192.0.2.2")
    counter.release("192.0.2.1")
    assert counter.acquire("192.0.2.1")
    counter.release("192.0.2.1")
    counter.release("192.0.2.1")
    counter.release("192.0.2.1")  # one release too many never makes room for more than the limit
    assert counter.acquire("192.0.2.1")
    assert counter.acquire("192.0.2.1")
    assert not counter.acquire("192.0.2.1")
