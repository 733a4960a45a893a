"""Pure parts of message authentication: DMARC records and alignment, Authentication-Results, MX decisions."""

from __future__ import annotations

import pytest

from mailauth import claims, dmarc, junk, results
from mailauth.dkim_check import DkimResult
from mailauth.dmarc import Discovery, DmarcRecord, DmarcResult
from mailauth.spf_check import SpfResult
from mailauth.verify import Verdict
from smtpd import policy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"v=DMARC1; p=reject", DmarcRecord("reject", "reject", False, False, 100)),
        (b"v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=s;pct=20", DmarcRecord("quarantine", "none", True, True, 20)),
        (b"v=DMARC1; p=bogus; pct=500", DmarcRecord("none", "none", False, False, 100)),
        (b"v=DMARC1", DmarcRecord("none", "none", False, False, 100)),
        (b"p=reject; v=DMARC1", None),  # RFC 7489 6.4: v must come first
        (b"v=spf1 -all", None),
        (b"v=DMARC1; p=reject; garbage", None),
    ],
)
def test_parse_record(text, expected):
    assert dmarc.parse_record(text) == expected


@pytest.mark.parametrize(
    ("identifier", "author", "strict", "expected"),
    [
        ("example.net", "example.net", True, True),
        ("mail.example.net", "example.net", True, False),
        ("mail.example.net", "example.net", False, True),
        ("example.co.uk", "other.co.uk", False, False),  # a public suffix is not an organisation
        ("a.example.co.uk", "b.example.co.uk", False, True),
        ("", "example.net", False, False),
        ("EXAMPLE.NET.", "example.net", True, True),
    ],
)
def test_alignment(identifier, author, strict, expected):
    assert dmarc.aligned(identifier, author, strict=strict) is expected


RECORD = DmarcRecord("reject", "quarantine", False, False, 100)
SPF_FAIL = SpfResult("fail", "sender.test", "mailfrom")


def test_evaluate_pass_fail_and_subdomain_policy():
    passing = [DkimResult("pass", "sender.test", "s")]
    assert dmarc.evaluate("sender.test", Discovery(RECORD), SPF_FAIL, passing).result == "pass"
    failed = dmarc.evaluate("sender.test", Discovery(RECORD), SPF_FAIL, [])
    assert (failed.result, failed.policy, failed.disposition) == ("fail", "reject", "reject")
    sub = dmarc.evaluate("a.sender.test", Discovery(RECORD, at_organisational_domain=True), SPF_FAIL, [])
    assert (sub.policy, sub.disposition) == ("quarantine", "quarantine")


def test_evaluate_pct_sampling_weakens_the_policy():
    sampled = DmarcRecord("reject", "reject", False, False, 30)
    inside = dmarc.evaluate("sender.test", Discovery(sampled), SPF_FAIL, [], sample=lambda: 0.29)
    outside = dmarc.evaluate("sender.test", Discovery(sampled), SPF_FAIL, [], sample=lambda: 0.30)
    assert (inside.disposition, outside.disposition) == ("reject", "quarantine")


def test_evaluate_temporary_results():
    assert dmarc.evaluate("sender.test", Discovery(None, temporary="timeout"), SPF_FAIL, []).result == "temperror"
    spf_temp = SpfResult("temperror", "sender.test", "mailfrom")
    result = dmarc.evaluate("sender.test", Discovery(RECORD), spf_temp, [])
    assert (result.result, result.policy) == ("temperror", "reject")
    assert dmarc.evaluate("sender.test", Discovery(None), SPF_FAIL, []).result == "none"


def test_authserv_id_and_removal_keep_other_bytes():
    raw = (
        b"Received: x\r\n"
        b"Authentication-Results: (comment) mx.ours.test; spf=pass\r\n"
        b"authentication-results:   other.test;\r\n\tdkim=pass\r\n"
        b'Authentication-Results: "MX.ours.test." 1; dmarc=pass\r\n'
        b"Subject: Authentication-Results: mx.ours.test;\r\n"
        b"\r\n"
        b"Authentication-Results: mx.ours.test; in the body\r\n"
    )
    cleaned, count = results.remove_forged(raw, "mx.ours.test")
    assert count == 2
    assert cleaned == (
        b"Received: x\r\n"
        b"authentication-results:   other.test;\r\n\tdkim=pass\r\n"
        b"Subject: Authentication-Results: mx.ours.test;\r\n"
        b"\r\n"
        b"Authentication-Results: mx.ours.test; in the body\r\n"
    )
    assert results.remove_forged(b"Subject: x\r\n\r\nbody", "mx.ours.test") == (b"Subject: x\r\n\r\nbody", 0)


def test_field_quotes_values_and_reasons():
    line = results.method_result(
        "spf", "fail", [("smtp.mailfrom", "a b@x")], reason='say "no"\r\n', comment="why (not)"
    )
    assert line == 'spf=fail (why ?not?) reason="say \\"no\\"??" smtp.mailfrom="a b@x"'
    assert results.field("mx.ours.test", []) == b"Authentication-Results: mx.ours.test; none\r\n"
    assert results.field("mx.ours.test", ["spf=pass", "dkim=none"]) == (
        b"Authentication-Results: mx.ours.test;\r\n\tspf=pass;\r\n\tdkim=none\r\n"
    )


def test_claims_read_every_from_domain():
    raw = b'From: "boss@Ours.test" <x@evil.test>\r\nFrom: y@second.test\r\nSubject: s\r\n\r\nFrom: z@body.test\r\n'
    found = claims.read(raw)
    assert found.author_domains == ("evil.test", "second.test")
    assert set(found.mentioned_domains) == {"ours.test", "evil.test", "second.test"}
    assert claims.with_sender("b@Env.test", found)[0] == "env.test"


def verdict(spf="none", spf_domain="sender.test", dkim=(), dmarc_results=()):
    return Verdict(
        spf_helo=SpfResult("none", "", "helo"),
        spf=SpfResult(spf, spf_domain, "mailfrom"),
        dkim=tuple(dkim),
        dmarc=tuple(dmarc_results),
    )


@pytest.mark.parametrize(
    ("item", "local", "expected"),
    [
        (verdict(), [], policy.AuthDecision()),
        (verdict(), ["ours.test"], policy.AuthDecision(policy.forged_local_sender("ours.test"))),
        (verdict("pass", "ours.test"), ["ours.test"], policy.AuthDecision()),
        (verdict("pass", "sender.test"), ["ours.test"], policy.AuthDecision(policy.forged_local_sender("ours.test"))),
        (verdict(dkim=[DkimResult("pass", "ours.test", "s")]), ["mail.ours.test"], policy.AuthDecision()),
        (
            verdict(dkim=[DkimResult("pass", "mail.ours.test", "s")]),
            ["ours.test"],
            policy.AuthDecision(policy.forged_local_sender("ours.test")),
        ),
        (verdict("temperror", "ours.test"), ["ours.test"], policy.AuthDecision(policy.AUTH_TEMPORARY)),
        (
            verdict(dmarc_results=[DmarcResult("s.test", "fail", "reject", "reject")]),
            [],
            policy.AuthDecision(policy.dmarc_rejected("s.test")),
        ),
        (
            verdict(dmarc_results=[DmarcResult("s.test", "fail", "reject", "quarantine")]),
            [],
            policy.AuthDecision(junk=True),
        ),
        (
            verdict(dmarc_results=[DmarcResult("s.test", "temperror", "reject")]),
            [],
            policy.AuthDecision(policy.AUTH_TEMPORARY),
        ),
        (verdict(dmarc_results=[DmarcResult("s.test", "temperror", "quarantine")]), [], policy.AuthDecision()),
        (verdict(dmarc_results=[DmarcResult("s.test", "temperror")]), [], policy.AuthDecision()),
        (verdict("fail"), [], policy.AuthDecision()),
    ],
)
def test_authentication_decision(item, local, expected):
    assert policy.authentication_decision(item, local, reject_spf_fail=False) == expected


def test_spf_refusals_only_when_configured():
    assert policy.authentication_decision(verdict("fail"), [], reject_spf_fail=True).reply == policy.SPF_FAILED
    assert policy.authentication_decision(verdict("temperror"), [], reject_spf_fail=True).reply == (
        policy.AUTH_TEMPORARY
    )
    assert policy.authentication_decision(verdict("softfail"), [], reject_spf_fail=True).reply is None


@pytest.mark.parametrize(
    ("rules", "senders", "expected"),
    [
        ([], ["a@x.test"], None),
        ([("x.test", False)], ["a@x.test"], False),
        ([("x.test", False)], ["a@mail.x.test"], False),
        ([("x.test", False)], ["a@notx.test"], None),
        ([("x.test", False), ("a@x.test", True)], ["a@x.test"], True),  # the address beats its domain
        ([("x.test", True), ("x.test", False)], ["b@x.test"], False),  # among equals, block wins
        ([("a@x.test", True)], ["bounce@list.test", "a@x.test"], True),  # MAIL FROM or From:
    ],
)
def test_allow_and_block_lists(rules, senders, expected):
    assert junk.listed(rules, senders) is expected


def test_junk_for_weighs_each_account():
    result = junk.JunkResult("builtin", spamicity={1: 0.99, 2: 0.2}, allowed=frozenset({3}), blocked=frozenset({4}))
    assert result.junk_for([1, 2, 3, 4], message_is_junk=False) == {1, 4}
    assert result.junk_for([1, 2, 3, 4], message_is_junk=True) == {1, 2, 4}


def test_claims_use_a_labels():
    found = claims.read("From: Jörg <jörg@München.test>\r\n\r\n".encode())
    assert found.author_domains == ("xn--mnchen-3ya.test",)
    assert found.mentioned_domains == ("xn--mnchen-3ya.test",)


def test_dkim_refusals_only_when_configured():
    failed = verdict(dkim=[DkimResult("fail", "sender.test", "s")])
    assert policy.authentication_decision(failed, [], reject_spf_fail=False).reply is None
    assert policy.authentication_decision(failed, [], reject_spf_fail=False, reject_dkim_fail=True).reply == (
        policy.DKIM_FAILED
    )
    rescued = verdict(dkim=[DkimResult("fail", "a.test", "s"), DkimResult("pass", "b.test", "s")])
    assert policy.authentication_decision(rescued, [], reject_spf_fail=False, reject_dkim_fail=True).reply is None
    unsigned = verdict()
    assert policy.authentication_decision(unsigned, [], reject_spf_fail=False, reject_dkim_fail=True).reply is None
    temporary = verdict(dkim=[DkimResult("temperror", "sender.test", "s")])
    assert policy.authentication_decision(temporary, [], reject_spf_fail=False, reject_dkim_fail=True).reply == (
        policy.AUTH_TEMPORARY
    )
