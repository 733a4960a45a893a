"""MTA-STS parsing and MX matching (RFC 8461 3.1, 3.2, 4.1), checked against postfix-mta-sts-resolver's parser."""

from __future__ import annotations

import pytest
from postfix_mta_sts_resolver.utils import parse_mta_sts_policy

from relay.mtasts import Policy, PolicyError, mx_matches, parse_policy, parse_record


@pytest.mark.parametrize(
    ("record", "policy_id"),
    [
        ("v=STSv1; id=20160831085700Z;", "20160831085700Z"),
        ("v=STSv1;id=abc", "abc"),
        ("v=STSv1; id=abc; ext=1", "abc"),
        ("v=STSv1 ; id=abc", "abc"),  # white space around ";" (RFC 8461 3.1: field-delim)
        ("v = STSv1; id=abc", None),
        ("v=STSv2; id=abc", None),
        ("id=abc; v=STSv1", None),
        ("v=STSv1; id=", None),
        ("v=STSv1; id=not-alnum", None),
        ("v=STSv1; id=" + "a" * 33, None),
        ("v=spf1 -all", None),
    ],
)
def test_txt_record(record, policy_id):
    assert parse_record(record) == policy_id


VALID = [
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
    "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\n",
    "version: STSv1\nmode: none\nmax_age: 0",
    "version:STSv1\nmode:enforce\nmx:MX.Example.COM.\nmax_age:31557600\nunknown: ignored\n",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_policies_read_as_postfix_mta_sts_resolver_reads_them(text):
    ours = parse_policy(text)
    theirs = parse_mta_sts_policy(text)
    assert ours.mode == theirs["mode"]
    assert ours.max_age == int(theirs["max_age"])
    assert list(ours.mx) == [pattern.lower().rstrip(".") for pattern in theirs["mx"]]


def test_a_policy_in_full():
    assert parse_policy(VALID[0]) == Policy("enforce", ("mail.example.com", "*.example.net"), 604800)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("mode: enforce\nmx: a.example\nmax_age: 1\n", "version"),
        ("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "version"),
        ("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", "mode"),
        ("version: STSv1\nmode: enforce\nmx: a.example\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", "max_age"),
        ("version: STSv1\nmode: enforce\nmax_age: 60\n", "mx"),
        ("<html>not a policy</html>", "version"),
    ],
)
def test_invalid_policies_are_refused(text, problem):
    with pytest.raises(PolicyError, match=problem):
        parse_policy(text)


@pytest.mark.parametrize(
    ("host", "patterns", "matches"),
    [
        ("mail.example.com", ["mail.example.com"], True),
        ("MAIL.example.com.", ["mail.example.com"], True),
        ("mx1.example.net", ["*.example.net"], True),
        ("example.net", ["*.example.net"], False),  # the wildcard stands for exactly one label
        ("a.b.example.net", ["*.example.net"], False),
        ("mail.example.com", ["mail.example.org", "*.example.com"], True),
        ("evil-example.com", ["*.example.com"], False),
        ("mail.example.com", [], False),
    ],
)
def test_mx_matching(host, patterns, matches):
    assert mx_matches(host, patterns) is matches
