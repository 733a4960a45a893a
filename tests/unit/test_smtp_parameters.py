"""DSN (RFC 3461 4) and REQUIRETLS (RFC 8689 3) parameters of MAIL and RCPT, and xtext, without I/O."""

from __future__ import annotations

import pytest

from mailcore import xtext
from smtpd.parameters import MailParameters, RcptParameters, mail_parameters, rcpt_parameters


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("", ""),
        ("QQ+2Bbar", "QQ+bar"),
        ("a+3Db", "a=b"),
        ("+20lead", " lead"),
        ("user@example.com", "user@example.com"),
    ],
)
def test_xtext_round_trip(encoded, decoded):
    assert xtext.decode(encoded) == decoded
    assert xtext.decode(xtext.encode(decoded)) == decoded


@pytest.mark.parametrize("bad", ["a+2b", "a+2", "a=b", "a+b", "tab\t", "é", "+00", "+7F", "+C3+A9"])
def test_xtext_refuses_what_is_not_xtext_of_printable_ascii(bad):
    assert xtext.decode(bad) is None


def test_xtext_encodes_plus_equals_and_space():
    assert xtext.encode("a+b=c d") == "a+2Bb+3Dc+20d"


@pytest.mark.parametrize(
    ("words", "tls", "found", "rest"),
    [
        ([], False, MailParameters(), []),
        (["RET=HDRS"], False, MailParameters(ret="HDRS"), []),
        (["ret=full", "SIZE=10"], False, MailParameters(ret="FULL"), ["SIZE=10"]),
        (["ENVID=QQ314159+2Bx"], False, MailParameters(envid="QQ314159+x"), []),
        (["BODY=8BITMIME", "envid=Case"], False, MailParameters(envid="Case"), ["BODY=8BITMIME"]),
        (["REQUIRETLS"], True, MailParameters(require_tls=True), []),
        (["requiretls", "RET=HDRS", "ENVID=x"], True, MailParameters("HDRS", "x", True), []),
        (["X-OTHER=1"], False, MailParameters(), ["X-OTHER=1"]),
    ],
)
def test_mail_parameters(words, tls, found, rest):
    assert mail_parameters(words, tls=tls) == (found, rest)


@pytest.mark.parametrize(
    ("words", "tls", "reply"),
    [
        (["RET=ALL"], False, "501 5.5.4 Invalid RET parameter (syntax)"),
        (["RET"], False, "501 5.5.4 Invalid RET parameter (syntax)"),
        (["RET="], False, "501 5.5.4 Invalid RET parameter (syntax)"),
        (["RET=FULL", "RET=HDRS"], False, "501 5.5.4 Invalid RET parameter (given twice)"),
        (["ENVID="], False, "501 5.5.4 Invalid ENVID parameter (not xtext of printable US-ASCII)"),
        (["ENVID=a=b"], False, "501 5.5.4 Invalid ENVID parameter (not xtext of printable US-ASCII)"),
        (["ENVID=" + "x" * 101], False, "501 5.5.4 Invalid ENVID parameter (over 100 characters)"),
        (["ENVID=a", "envid=b"], False, "501 5.5.4 Invalid ENVID parameter (given twice)"),
        (["REQUIRETLS"], False, "530 5.7.10 REQUIRETLS needs a TLS session"),
        (["REQUIRETLS=YES"], True, "501 5.5.4 Invalid REQUIRETLS parameter (takes no value)"),
    ],
)
def test_mail_parameters_refused(words, tls, reply):
    assert mail_parameters(words, tls=tls) == reply


def test_envid_of_exactly_100_characters_is_accepted():
    assert mail_parameters(["ENVID=" + "x" * 100], tls=False) == (MailParameters(envid="x" * 100), [])


@pytest.mark.parametrize(
    ("words", "found", "rest"),
    [
        ([], RcptParameters(), []),
        (["NOTIFY=NEVER"], RcptParameters(notify="NEVER"), []),
        (["notify=never"], RcptParameters(notify="NEVER"), []),
        (["NOTIFY=DELAY,SUCCESS"], RcptParameters(notify="SUCCESS,DELAY"), []),
        (["NOTIFY=failure"], RcptParameters(notify="FAILURE"), []),
        (["ORCPT=rfc822;Bob+2Bx@example.com"], RcptParameters(orcpt="rfc822;Bob+x@example.com"), []),
        (["NOTIFY=SUCCESS", "ORCPT=RFC822;a@b", "X=1"], RcptParameters("SUCCESS", "RFC822;a@b"), ["X=1"]),
    ],
)
def test_rcpt_parameters(words, found, rest):
    assert rcpt_parameters(words) == (found, rest)


@pytest.mark.parametrize(
    ("words", "reply"),
    [
        (["NOTIFY=NEVER,SUCCESS"], "501 5.5.4 Invalid NOTIFY parameter (syntax)"),
        (["NOTIFY="], "501 5.5.4 Invalid NOTIFY parameter (syntax)"),
        (["NOTIFY"], "501 5.5.4 Invalid NOTIFY parameter (syntax)"),
        (["NOTIFY=SUCCESS,SUCCESS"], "501 5.5.4 Invalid NOTIFY parameter (syntax)"),
        (["NOTIFY=ALWAYS"], "501 5.5.4 Invalid NOTIFY parameter (syntax)"),
        (["NOTIFY=SUCCESS", "NOTIFY=FAILURE"], "501 5.5.4 Invalid NOTIFY parameter (given twice)"),
        (["ORCPT=a@b"], "501 5.5.4 Invalid ORCPT parameter (syntax)"),
        (["ORCPT=;a@b"], "501 5.5.4 Invalid ORCPT parameter (syntax)"),
        (["ORCPT=rfc822;"], "501 5.5.4 Invalid ORCPT parameter (syntax)"),
        (["ORCPT=rfc822;a=b"], "501 5.5.4 Invalid ORCPT parameter (syntax)"),
        (["ORCPT=rfc(822);a@b"], "501 5.5.4 Invalid ORCPT parameter (syntax)"),
        (["ORCPT=rfc822;" + "a" * 494], "501 5.5.4 Invalid ORCPT parameter (over 500 characters)"),
    ],
)
def test_rcpt_parameters_refused(words, reply):
    assert rcpt_parameters(words) == reply
