"""MAILSITE_SUBMISSION_RATE: messages per account per window at submission, counted at MAIL FROM as Postfix's
anvil counts message delivery requests; over the rate MAIL FROM answers 450 4.7.1 and nothing is lost."""

from __future__ import annotations

import smtplib
import time

import pytest

from ops import limits
from tests.conftest import PASSWORD
from tests.smtp_support import mail, stored


@pytest.fixture
def submission(listeners, make_account, settings):
    alice = make_account("alice@example.com")
    make_account("bob@example.com")
    settings.MAILSITE_SUBMISSION_RATE = (2, 3600)
    started = listeners("smtpd")
    return started["submission"].port, started["smtps"].port, alice.pk


def signed_in(client: smtplib.SMTP, address: str) -> smtplib.SMTP:
    client.login(address, PASSWORD)
    return client


def test_over_the_rate_mail_from_is_deferred(submission, tls_client_context) -> None:
    starttls, implicit, _ = submission
    with smtplib.SMTP("127.0.0.1", starttls) as client:
        client.starttls(context=tls_client_context)
        signed_in(client, "alice@example.com")
        for number in (1, 2):
            client.sendmail(
                "alice@example.com", ["bob@example.com"], mail(f"Within {number}", sender="alice@example.com")
            )
        code, reply = client.mail("alice@example.com")
        assert (code, reply.decode()) == (450, limits.SUBMISSION_RATE_EXCEEDED[4:])
        client.rset()
    # One count for both submission ports, and for each account its own.
    with smtplib.SMTP_SSL("127.0.0.1", implicit, context=tls_client_context) as client:
        signed_in(client, "alice@example.com")
        assert client.mail("alice@example.com")[0] == 450
        client.rset()
    with smtplib.SMTP_SSL("127.0.0.1", implicit, context=tls_client_context) as client:
        signed_in(client, "bob@example.com")
        client.sendmail("bob@example.com", ["alice@example.com"], mail("From Bob", sender="bob@example.com"))
    assert len(stored("bob@example.com")) == 2
    assert len(stored("alice@example.com")) == 1


def test_the_window_is_counted_in_redis_for_every_host(submission, tls_client_context, settings) -> None:
    assert limits.shared()
    starttls, _, alice = submission
    with smtplib.SMTP("127.0.0.1", starttls) as client:
        client.starttls(context=tls_client_context)
        signed_in(client, "alice@example.com")
        client.sendmail("alice@example.com", ["bob@example.com"], mail("Counted", sender="alice@example.com"))
    [key] = limits.client().keys(limits.key("submission", str(alice), "*"))
    assert limits.client().get(key) == b"1"
    assert 3500 < limits.client().ttl(key) <= 3600


def test_without_redis_a_process_counts_alone(settings) -> None:
    settings.MAILSITE_BROKER_URL = "filesystem://"
    rate = limits.SubmissionRate(2, 2)
    time.sleep(2.05 - time.time() % 2)  # at the start of a window, so the four fall in one
    assert [rate.allow(7), rate.allow(7), rate.allow(7), rate.allow(8)] == [True, True, False, True]
    time.sleep(2)  # the next window
    assert rate.allow(7)
