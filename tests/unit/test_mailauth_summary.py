"""The reading pane's words about a sender (mailauth.summary), read from Authentication-Results fields as our MX
writes them (mailauth.verify.Verdict) and as other hosts do; and the allow and block list entries' form."""

from __future__ import annotations

import pytest

from mailauth import sender_rules, summary
from mailauth.arc_check import ArcResult
from mailauth.dkim_check import DkimResult
from mailauth.dmarc import DmarcResult
from mailauth.spf_check import SpfResult
from mailauth.verify import Verdict

OURS = "mx.mailsite.test"
BODY = b"From: carol@sender.test\r\nSubject: Hi\r\n\r\nHi.\r\n"


def stored(verdict: Verdict, *, above: bytes = b"", below: bytes = b"") -> bytes:
    """A message as the MX stores it: trace fields, our Authentication-Results, then what was received."""
    return b"Received: from mail.sender.test\r\n" + above + verdict.header_field(OURS) + below + BODY


def verdict(*, spf: str = "pass", dkim: tuple[str, ...] = ("pass",), dmarc: str = "pass", arc: str = "none") -> Verdict:
    return Verdict(
        spf_helo=SpfResult("pass", "mail.sender.test", "helo"),
        spf=SpfResult(spf, "sender.test", "mailfrom"),
        dkim=tuple(
            DkimResult(r, "sender.test", "sel", "body hash did not verify" if r == "fail" else "") for r in dkim
        ),
        arc=ArcResult(arc),
        dmarc=(DmarcResult("sender.test", dmarc, "reject", "reject" if dmarc == "fail" else "none"),),
    )


def test_verified_sender():
    found = summary.summarise(stored(verdict()), OURS)
    assert found == summary.Summary(
        "verified",
        "Verified: this message comes from sender.test.",
        (
            "DKIM: valid signature by sender.test.",
            "SPF: sender.test allows the server that sent it.",
            "DMARC: the message passes the policy of sender.test.",
        ),
    )
    assert not found.failed


def test_dmarc_failure_is_a_warning_with_its_policy():
    found = summary.summarise(stored(verdict(spf="fail", dkim=("fail",), dmarc="fail")), OURS)
    assert found is not None
    assert found.failed
    assert found.headline.startswith("Warning: this message failed sender verification.")
    assert found.lines == (
        "DKIM: the signature by sender.test does not match the message (body hash did not verify).",
        "SPF: sender.test does not allow the server that sent it.",
        "DMARC: the message fails the policy of sender.test (p=reject dis=reject).",
    )


@pytest.mark.parametrize(
    ("checks", "state", "headline"),
    [
        (
            {"dmarc": "none"},
            "partly",
            "Partly verified: signed by sender.test, but sender.test publishes no DMARC policy.",
        ),
        (
            {"dmarc": "none", "dkim": ()},
            "partly",
            "Partly verified: sent by a server sender.test allows, but sender.test publishes no DMARC policy.",
        ),
        (
            {"dmarc": "none", "dkim": (), "spf": "none"},
            "unverified",
            "Not verified: sender.test publishes nothing this message could be checked against.",
        ),
        (
            {"dmarc": "none", "dkim": ("fail",), "spf": "softfail"},
            "failed",
            "Warning: the checks of sender.test failed, and nothing vouches for it.",
        ),
        (
            {"dmarc": "temperror", "dkim": (), "spf": "temperror"},
            "temporary",
            "Not verified: a DNS lookup failed while the sender was checked.",
        ),
    ],
)
def test_partial_and_missing_verification(checks, state, headline):
    found = summary.summarise(stored(verdict(**checks)), OURS)
    assert found is not None
    assert (found.state, found.headline) == (state, headline)


def test_arc_is_told_only_when_it_says_something():
    assert (
        "ARC: the servers that forwarded it vouch for the checks they made."
        in summary.summarise(stored(verdict(dmarc="none", arc="pass")), OURS).lines
    )
    assert not any(line.startswith("ARC") for line in summary.summarise(stored(verdict()), OURS).lines)


def test_only_our_own_topmost_field_counts():
    foreign = b"Authentication-Results: mx.bank.test; dmarc=pass header.from=bank.test\r\n"
    assert summary.summarise(foreign + BODY, OURS) is None
    # Ours is above whatever the message brought along; a foreign pass below it changes nothing.
    found = summary.summarise(stored(verdict(dmarc="fail"), below=foreign), OURS)
    assert found is not None
    assert found.failed
    # The authserv-id is compared whole and without case (RFC 8601 2.5), not as a prefix.
    assert summary.summarise(b"Authentication-Results: mx.mailsite.test.evil; dmarc=pass\r\n" + BODY, OURS) is None
    folded = b"Authentication-Results: (ours)\r\n MX.Mailsite.Test;\r\n\tdmarc=pass header.from=x.test\r\n"
    assert summary.summarise(folded + BODY, OURS).state == "verified"


def test_comments_and_quoted_strings_do_not_split_results():
    field = (
        b'Authentication-Results: mx.mailsite.test; dkim=fail (bad; really "bad") header.d="a;b.test";'
        b" dmarc=fail (p=reject dis=quarantine; no aligned identifier) header.from=sender.test\r\n"
    )
    results = summary.ours(field + BODY, OURS)
    assert [(r.method, r.result) for r in results] == [("dkim", "fail"), ("dmarc", "fail")]
    assert results[0].properties == {"header.d": "a;b.test"}
    assert results[1].comment == "p=reject dis=quarantine; no aligned identifier"


def test_field_in_the_body_is_not_read():
    assert summary.summarise(BODY + b"Authentication-Results: mx.mailsite.test; dmarc=pass\r\n", OURS) is None


@pytest.mark.parametrize(
    ("typed", "entry"),
    [
        ("Carol@Sender.TEST", "carol@sender.test"),
        ("  sender.test. ", "sender.test"),
        ("@sender.test", "sender.test"),
        ("carol@Müller.example", "carol@xn--mller-kva.example"),
        ("müller.example", "xn--mller-kva.example"),
    ],
)
def test_list_entries_are_stored_as_the_mx_compares_them(typed, entry):
    assert sender_rules.normalise(typed) == entry


@pytest.mark.parametrize("typed", ["", "localhost", "not a domain", "carol@", "a b@sender.test", "carol@-x.test"])
def test_list_entries_that_are_neither_address_nor_domain(typed):
    with pytest.raises(sender_rules.InvalidSender):
        sender_rules.normalise(typed)
