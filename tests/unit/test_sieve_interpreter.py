"""The Sieve interpreter, run on the RFCs' examples: RFC 5228 and its extensions."""

from __future__ import annotations

import datetime

import pytest

from mailcore.mime import parse_message
from sieve.actions import Discard, FileInto, Keep, Redirect, Reject, Result, Vacation
from sieve.errors import SieveError
from sieve.interpreter import MAX_ACTIONS, MAX_REDIRECTS, Environment, run
from sieve.message import MessageView
from sieve.validate import compile_script

MESSAGE = (
    b"Return-Path: <tim@example.com>\r\n"
    b"Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\r\n"
    b"From: coyote@desert.example.org\r\n"
    b"To: roadrunner@acme.example.com, Ken <ken+sieve@example.org>\r\n"
    b"Cc: me@example.com\r\n"
    b"Sender: owner-ietf-mta-filters@imc.org\r\n"
    b"Subject: I have a present for you\r\n"
    b"X-Caffeine: C8H10N4O2\r\n"
    b"X-Long: first\r\n second\r\n"
    b"\r\n"
    b"Look, I'm sorry about the whole anvil thing, and I really\r\n"
    b"didn't mean to try and drop it on you from the top of the\r\n"
    b"cliff.  I want to try to make it up to you.  I've got some\r\n"
    b"great birdseed over here at my place--top of the line\r\n"
    b"stuff--and if you come by, I'll have it all wrapped\r\n"
    b"up for you.  I'm really sorry for all the problems I've\r\n"
    b"caused for you over the years, but I know we can work\r\n"
    b"this out.\r\n"
)
NOW = datetime.datetime(2007, 7, 1, 12, 0, tzinfo=datetime.UTC)


def execute(
    script: str,
    raw: bytes = MESSAGE,
    *,
    envelope_from: str = "tim@example.com",
    envelope_to: str = "ken+sieve@example.org",
    mailboxes: frozenset[str] = frozenset(),
    spam_percent: int | None = None,
) -> Result:
    env = Environment(envelope_from, envelope_to, mailboxes, spam_percent, NOW)
    return run(compile_script(script), MessageView(raw, parse_message(raw)), env)


def test_no_script_actions_is_implicit_keep():
    assert execute("").actions == [Keep()]


def test_rfc5228_section_9_extended_example():
    script = """require ["fileinto"];
if header :is "Sender" "owner-ietf-mta-filters@imc.org" { fileinto "filter"; }
elsif address :DOMAIN :is ["From", "To"] "example.com" { keep; }
elsif anyof (NOT address :all :contains ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) { fileinto "spam"; }
else { fileinto "personal"; }
"""
    assert execute(script).actions == [FileInto("filter")]
    other = MESSAGE.replace(b"Sender: owner-ietf", b"Sender: someone-else")
    assert execute(script, other).actions == [FileInto("personal")]
    spam = other.replace(b"I have a present", b"Make MONEY fast")
    assert execute(script, spam).actions == [FileInto("spam")]
    company = other.replace(b"From: coyote@desert.example.org", b"From: boss@example.com")
    assert execute(script, company).actions == [Keep()]


def test_rfc5228_2_7_1_matches_and_comparators():
    assert execute('if header :contains "x-caffeine" "C8H10" { discard; }').actions == [Discard()]
    assert execute('if header :contains "x-caffeine" "c8h10" { discard; }').actions == [Discard()]
    octet = 'if header :comparator "i;octet" :contains "x-caffeine" "c8h10" { discard; }'
    assert execute(octet).actions == [Keep()]
    assert execute('if header :matches "X-Caffeine" "C?H10N4*" { discard; }').actions == [Discard()]
    assert execute('if header :is "X-Caffeine" "C8H10N4O" { discard; }').actions == [Keep()]
    # RFC 5228 2.7.1: "\\*" in a :matches key is a literal star.
    assert execute('if header :matches "Subject" "I have\\\\*" { discard; }').actions == [Keep()]


def test_rfc5228_5_header_values_are_unfolded():
    assert execute('if header :is "X-Long" "first second" { discard; }').actions == [Discard()]


def test_rfc5228_5_1_address_parts():
    assert execute('if address :localpart :is "From" "coyote" { discard; }').actions == [Discard()]
    assert execute('if address :domain :is "To" "acme.example.com" { discard; }').actions == [Discard()]
    assert execute('if address :all :is "To" "ken+sieve@example.org" { discard; }').actions == [Discard()]
    assert execute('if address :is "To" "Ken" { discard; }').actions == [Keep()]


def test_fields_tested_again_give_the_same_answers():
    """A field's values are decoded and its addresses parsed once per message: later tests, in any case of the
    field's name, still see every value, whatever an earlier caller did with its list."""
    view = MessageView(MESSAGE, parse_message(MESSAGE))
    view.header("subject").clear()
    view.addresses("to").clear()
    assert view.header("SUBJECT") == ["I have a present for you"]
    assert view.addresses("To") == [("roadrunner", "acme.example.com"), ("ken+sieve", "example.org")]
    script = "\n".join(
        [
            *(f'if address :domain :is "to" "nowhere{n}.example" {{ discard; }}' for n in range(5)),
            'if header :matches "list-id" "*<*>" { discard; }',
            'if header :matches "subject" "I * a *" { addflag "x${1}"; }',
            'if header :matches "subject" "I * a *" { fileinto "${2}"; }',
        ]
    )
    result = execute('require ["fileinto", "variables", "imap4flags"];' + script)
    assert result.actions == [FileInto("present for you", ("xhave",))]


def test_rfc5228_5_4_envelope():
    script = 'require "envelope"; if envelope :all :is "from" "tim@example.com" { discard; }'
    assert execute(script).actions == [Discard()]
    assert execute(script, envelope_from="").actions == [Keep()]
    null = 'require "envelope"; if envelope :is "from" "" { discard; }'
    assert execute(null, envelope_from="").actions == [Discard()]


def test_rfc5228_5_5_exists_and_5_9_size():
    assert execute('if exists ["From", "Date"] { discard; }').actions == [Discard()]
    assert execute('if exists ["From", "X-None"] { discard; }').actions == [Keep()]
    assert execute("if size :over 100 { discard; }").actions == [Discard()]
    assert execute("if size :under 1K { discard; }").actions == [Discard()]
    assert execute(f"if size :over {len(MESSAGE)} {{ discard; }}").actions == [Keep()]


def test_rfc5228_redirect_and_stop():
    script = 'require "fileinto"; redirect "bart@example.com"; stop; fileinto "never";'
    assert execute(script).actions == [Redirect("bart@example.com")]


def test_rfc5228_2_10_3_duplicate_actions_are_done_once():
    script = 'require "fileinto"; fileinto "A"; fileinto "A"; redirect "x@y.example"; redirect "x@y.example";'
    assert execute(script).actions == [FileInto("A"), Redirect("x@y.example")]


def test_rfc5228_keep_plus_discard():
    assert execute("discard; keep;").actions == [Discard(), Keep()]


def test_rfc3894_copy():
    script = 'require ["copy", "fileinto"]; fileinto :copy "incoming"; redirect :copy "b@example.com";'
    assert execute(script).actions == [Keep(), FileInto("incoming"), Redirect("b@example.com")]


def test_rfc5490_create_and_mailboxexists():
    script = """require ["fileinto", "mailbox"];
if mailboxexists "Fruit" { fileinto "Fruit"; } else { fileinto :create "Vegetables"; }"""
    assert execute(script, mailboxes=frozenset({"Fruit"})).actions == [FileInto("Fruit")]
    assert execute(script).actions == [FileInto("Vegetables", create=True)]
    assert execute('require "mailbox"; if mailboxexists "inbox" { discard; }').actions == [Discard()]


def test_rfc5173_body():
    assert execute('require "body"; if body :text :contains "birdseed" { discard; }').actions == [Discard()]
    assert execute('require "body"; if body :contains "MAKE MONEY FAST" { discard; }').actions == [Keep()]
    assert execute('require "body"; if body :raw :contains "line\r\nstuff" { discard; }').actions == [Discard()]


def test_rfc5173_body_content_types():
    raw = (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain project schedule\r\n"
        b"--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PHA+aHRtbCA8Yj5zZWNyZXQ8L2I+PC9wPg==\r\n--b--\r\n"
    )
    html = 'require "body"; if body :content "text/html" :contains "<b>secret" { discard; }'
    assert execute(html, raw).actions == [Discard()]
    plain = 'require "body"; if body :content "text/plain" :contains "secret" { discard; }'
    assert execute(plain, raw).actions == [Keep()]
    text = 'require "body"; if body :text :contains "html secret" { discard; }'
    assert execute(text, raw).actions == [Discard()]


def test_rfc5231_relational():
    count = """require ["relational", "comparator-i;ascii-numeric"];
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"] { discard; }"""
    assert execute(count).actions == [Discard()]
    four = count.replace('["3"]', '["4"]')
    assert execute(four).actions == [Keep()]
    value = """require ["relational", "comparator-i;ascii-numeric"];
if header :value "lt" :comparator "i;ascii-numeric" "x-priority" "3" { discard; }"""
    assert execute(value, b"X-Priority: 1 (Highest)\r\n\r\n").actions == [Discard()]
    assert execute(value, b"X-Priority: 5\r\n\r\n").actions == [Keep()]
    # RFC 4790 9.1.1: a value without digits is positive infinity, never below 3.
    assert execute(value, b"X-Priority: high\r\n\r\n").actions == [Keep()]
    text = 'require "relational"; if header :value "gt" "Subject" "H" { discard; }'
    assert execute(text).actions == [Discard()]


def test_rfc5233_subaddress():
    script = """require ["envelope", "subaddress", "fileinto"];
if envelope :user "to" "ken" { fileinto "mailboxes.ken"; }
if envelope :detail "to" "sieve" { fileinto "lists.sieve"; }"""
    assert execute(script).actions == [FileInto("mailboxes.ken"), FileInto("lists.sieve")]
    assert execute(script, envelope_to="ken@example.org").actions == [FileInto("mailboxes.ken")]
    # RFC 5233 4: an address without a separator has no detail, not an empty one.
    empty = 'require ["envelope", "subaddress"]; if envelope :detail "to" "" { discard; }'
    assert execute(empty, envelope_to="ken@example.org").actions == [Keep()]
    assert execute(empty, envelope_to="ken+@example.org").actions == [Discard()]


def test_rfc5232_imap4flags():
    script = """require ["imap4flags", "fileinto", "variables"];
if size :over 500 { setflag "\\\\Deleted"; }
if header :contains "from" "coyote@desert.example.org" {
    setflag "flagvar" "\\\\Flagged";
    fileinto :flags "${flagvar}" "INBOX.From Boss";
}
addflag "$Work Urgent";
removeflag "\\\\deleted";
"""
    assert execute(script).actions == [
        FileInto("INBOX.From Boss", ("\\Flagged",)),
    ]
    implicit = 'require "imap4flags"; addflag ["\\\\Seen", "A"]; addflag "a B";'
    assert execute(implicit).actions == [Keep(("\\Seen", "A", "B"))]
    check = 'require "imap4flags"; setflag "Junk"; if hasflag :contains "jun" { discard; }'
    assert execute(check).actions == [Discard()]


def test_rfc5229_set_modifiers():
    script = """require ["variables", "fileinto"];
set "a" "juMBlEd lETteRS";
set :length "b" "${a}"; fileinto "${b}";
set :lower "b" "${a}"; fileinto "${b}";
set :upperfirst "b" "${a}"; fileinto "${b}";
set :upperfirst :lower "b" "${a}"; fileinto "${b}";
set :quotewildcard "b" "Rock*"; fileinto "${b}";
"""
    assert [a.mailbox for a in execute(script).actions] == [
        "15",
        "jumbled letters",
        "JuMBlEd lETteRS",
        "Jumbled letters",
        "Rock\\*",
    ]


def test_rfc5229_match_variables():
    script = """require ["fileinto", "variables"];
if header :matches "Subject" "I * a *" { fileinto "who.${1}.what.${2}"; }
if header :matches "From" "*@*.example.org" { fileinto "${2}-${1}-${0}-${9}"; }
"""
    assert execute(script).actions == [
        FileInto("who.have.what.present for you"),
        FileInto("desert-coyote-coyote@desert.example.org-"),
    ]
    lists = """require ["fileinto", "variables"];
if header :matches "Subject" "[*] *" { fileinto "lists.${1}"; }"""
    raw = b"Subject: [acme-users] [fwd] version 1.0 is out\r\n\r\n"
    assert execute(lists, raw).actions == [FileInto("lists.acme-users")]


def test_rfc5229_string_test_and_unknown_variables():
    script = """require "variables";
set "state" "${nothing}x";
if string :is "${state}" "x" { discard; }"""
    assert execute(script).actions == [Discard()]
    count = """require ["variables", "relational"];
if string :count "eq" ["a", "", "b"] "2" { discard; }"""
    assert execute(count).actions == [Discard()]


def test_rfc5260_date_and_currentdate():
    away = """require ["date", "relational", "vacation"];
if allof(currentdate :value "ge" "date" "2007-06-30", currentdate :value "le" "date" "2007-07-07")
{ vacation :days 7 "I'm away during the first week in July."; }"""
    assert execute(away).actions == [Keep(), Vacation("I'm away during the first week in July.", 7)]
    assert execute('require "date"; if date :is "date" "year" "1997" { discard; }').actions == [Discard()]
    original = 'require "date"; if date :originalzone :is "date" "hour" "09" { discard; }'
    assert execute(original).actions == [Discard()]
    utc = 'require "date"; if date :zone "+0000" :is "date" "time" "17:06:31" { discard; }'
    assert execute(utc).actions == [Discard()]
    weekday = 'require "date"; if date :is "date" "weekday" "2" { discard; }'  # a Tuesday
    assert execute(weekday).actions == [Discard()]
    missing = 'require "date"; if date :is "x-none" "year" "1997" { discard; }'
    assert execute(missing).actions == [Keep()]
    iso = 'require "date"; if currentdate :zone "+0130" :is "iso8601" "2007-07-01T13:30:00+01:30" { discard; }'
    assert execute(iso).actions == [Discard()]
    julian = 'require "date"; if currentdate :is "julian" "54282" { discard; }'
    assert execute(julian).actions == [Discard()]


def test_rfc5429_reject_and_ereject():
    script = 'require "reject"; if address "from" "coyote@desert.example.org" { reject "I no longer accept mail"; }'
    assert execute(script).actions == [Reject("I no longer accept mail")]
    assert execute('require "ereject"; ereject "no";').actions == [Reject("no", extended=True)]


def test_rfc5429_reject_with_keep_is_an_error_and_keeps():
    result = execute('require ["reject", "fileinto"]; fileinto "A"; reject "no";')
    assert result.actions == [Keep()]
    assert "reject" in (result.error or "")


def test_rfc5230_vacation():
    script = """require "vacation";
if header :contains "subject" "cyrus" { vacation "I'm out -- send mail to cyrus-bugs"; }
else { vacation "I'm out -- call me at 321-1234"; }"""
    assert execute(script).actions == [Keep(), Vacation("I'm out -- call me at 321-1234", 7)]
    full = """require "vacation";
vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"] :subject "Away" :from "tjs@example.edu"
  :handle "h1" "I'm away until October 19.";"""
    assert execute(full).actions == [
        Keep(),
        Vacation(
            "I'm away until October 19.",
            23,
            subject="Away",
            from_="tjs@example.edu",
            addresses=("tjs@example.edu", "ts4z@landru.example.edu"),
            handle="h1",
        ),
    ]


def test_rfc5230_vacation_twice_is_an_error():
    result = execute('require "vacation"; vacation "a"; vacation "b";')
    assert result.actions == [Keep()]
    assert result.error


def test_rfc3685_spamtest():
    script = """require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "INBOX.unclassified"; }
elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3" { fileinto "INBOX.spam-trap"; }"""
    assert execute(script).actions == [FileInto("INBOX.unclassified")]
    assert execute(script, spam_percent=90).actions == [FileInto("INBOX.spam-trap")]
    assert execute(script, spam_percent=5).actions == [Keep()]
    plus = """require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "Junk"; }"""
    assert execute(plus, spam_percent=51).actions == [FileInto("Junk")]
    assert execute(plus, spam_percent=50).actions == [Keep()]


def test_limit_on_actions_keeps():
    script = 'require "fileinto";' + "".join(f'fileinto "f{i}";' for i in range(MAX_ACTIONS + 1))
    result = execute(script)
    assert result.actions == [Keep()]
    assert "actions" in (result.error or "")


def test_limit_on_redirects_keeps():
    script = "".join(f'redirect "r{i}@example.net";' for i in range(MAX_REDIRECTS + 1))
    result = execute(script)
    assert result.actions == [Keep()]
    assert "redirects" in (result.error or "")


def test_step_budget_stops_a_script_that_works_too_hard():
    # Each test compares a long value against many keys: within the size limit, far over the work budget.
    keys = ", ".join(f'"*a*b*c*{i}"' for i in range(300))
    tests = ", ".join(f'header :matches "Subject" [{keys}]' for _ in range(20))
    raw = b"Subject: " + b"ab" * 20_000 + b"\r\n\r\n"
    result = execute(f"if anyof({tests}) {{ discard; }}", raw)
    assert result.actions == [Keep()]
    assert "steps" in (result.error or "")


def test_matches_written_to_backtrack_is_linear():
    # A pattern that makes a backtracking matcher explode: many stars, a text that almost matches.
    pattern = "*a" * 30 + "*b"
    raw = b"Subject: " + b"a" * 3_000 + b"\r\n\r\n"
    assert execute(f'if header :matches "Subject" "{pattern}" {{ discard; }}', raw).actions == [Keep()]
    raw = b"Subject: " + b"a" * 3_000 + b"b\r\n\r\n"
    assert execute(f'if header :matches "Subject" "{pattern}" {{ discard; }}', raw).actions == [Discard()]


def test_encoded_words_are_decoded_for_header_tests():
    raw = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin\r\n\r\nx"
    assert execute('if header :contains "subject" "Grüße" { discard; }', raw).actions == [Discard()]


@pytest.mark.parametrize("numeric", ['"i;ascii-numeric" :contains', '"i;ascii-numeric" :matches'])
def test_numeric_comparator_without_substring_matching_is_a_runtime_error(numeric: str):
    script = f'require "comparator-i;ascii-numeric"; if header :comparator {numeric} "X" "1" {{ discard; }}'
    result = execute(script, b"X: 1\r\n\r\n")
    assert result.actions == [Keep()]
    assert result.error


def test_redirect_to_something_that_is_not_an_address():
    with pytest.raises(SieveError, match="is not an e-mail address"):
        compile_script('redirect "bob@example.com\\r\\nRCPT TO:<eve@example.net>";')
    script = 'require "variables"; set "to" "a b@example.com"; redirect "${to}";'
    result = execute(script)
    assert result.actions == [Keep()]
    assert "not an e-mail address" in (result.error or "")


def test_body_tests_read_a_bounded_part_of_a_huge_message():
    raw = b"Subject: big\r\n\r\n" + b"filler line\r\n" * 400_000 + b"needle\r\n"
    script = 'require "body"; if body :contains "needle" { discard; }'
    # Past the first MiB of a part, body tests do not look: the needle at the end is not found.
    assert execute(script, raw).actions == [Keep()]
    assert execute(script.replace("needle", "filler"), raw).actions == [Discard()]
