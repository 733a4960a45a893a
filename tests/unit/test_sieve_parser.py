"""Sieve grammar and validation (RFC 5228 2 and 8): what is accepted, and where a refusal points."""

from __future__ import annotations

import pytest

from sieve.errors import SieveError
from sieve.parser import MAX_NESTING, MAX_SCRIPT_BYTES, Number, Strings, Tag, parse
from sieve.validate import compile_script


def test_rfc5228_section_9_example_is_accepted():
    script = compile_script(
        """#
# Example Sieve Filter
require ["fileinto"];
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   /* move to "spam" mailbox */
        }
else
        {
        fileinto "personal";
        }
"""
    )
    assert script.required == {"fileinto"}
    assert [c.name for c in script.commands] == ["require", "if", "elsif", "elsif", "else"]
    assert script.commands[2].tests[0].tagged == {"domain": None, "is": None}


def test_strings_numbers_and_tags():
    (command,) = parse('x "a\\"b\\\\c\\d" ["1", "2"] 10K 2m 3G :Over;')
    assert command.arguments == [
        Strings(['a"b\\cd'], False, 1, 3),
        Strings(["1", "2"], True, 1, 15),
        Number(10 * 1024, 1, 26),
        Number(2 * 1024 * 1024, 1, 30),
        Number(3 * 1024**3, 1, 33),
        Tag("over", 1, 36),
    ]


def test_multiline_string_is_dot_unstuffed_and_crlf():
    (command,) = parse("vacation text: # comment\nline one\n..dotted\n.\n;\n")
    assert command.arguments[0].values == ["line one\r\n.dotted\r\n"]


def test_multiline_string_with_crlf_input():
    (command,) = parse("vacation text:\r\nA\r\n.\r\n;")
    assert command.arguments[0].values == ["A\r\n"]


@pytest.mark.parametrize(
    ("script", "line", "column", "message"),
    [
        ("if true {\n  keep\n}", 3, 1, "expected ';' or '{'"),
        ('keep;\n  "x";', 2, 3, "expected a command"),
        ('if header :is "a" "b" {\nstop;', 2, 6, "missing '}'"),
        ('x "unterminated', 1, 3, "unterminated quoted string"),
        ("x text:\nno end\n", 1, 3, "unterminated multi-line string"),
        ("x /* open", 1, 3, "unterminated /* comment"),
        ("x @;", 1, 3, "unexpected character"),
        ('x ["a", 1];', 1, 9, "expected a string"),
        ("if anyof (true, false {}", 1, 23, "expected ',' or ')'"),
    ],
)
def test_syntax_errors_carry_line_and_column(script: str, line: int, column: int, message: str):
    with pytest.raises(SieveError) as info:
        parse(script)
    assert (info.value.line, info.value.column) == (line, column)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("script", "line", "column", "message"),
    [
        ('fileinto "x";', 1, 1, 'fileinto needs require "fileinto"'),
        ('require "fileinto";\nkeep;\nrequire "copy";', 3, 1, "require must come before"),
        ('if true { require "copy"; }', 1, 11, "require must come before"),
        ('require "foo";', 1, 9, 'unsupported extension "foo"'),
        ("else { keep; }", 1, 1, "else without a preceding if"),
        ("frobnicate;", 1, 1, 'unknown command "frobnicate"'),
        ("if frob { keep; }", 1, 4, 'unknown test "frob"'),
        ('if header :is :contains "a" "b" {}', 1, 15, ":contains cannot be used with :is"),
        ('if header :over "a" "b" {}', 1, 11, "header has no argument :over"),
        ('if header "a" {}', 1, 4, "header takes 2 argument(s), 1 given"),
        ('if header "a" :is "b" {}', 1, 15, ":is must come before"),
        ("if size 10 {}", 1, 4, "size needs :over or :under"),
        ('if size :over "10" {}', 1, 15, "expected a number"),
        ('redirect ["a@b", "c@d"];', 1, 10, "expected a string"),
        ('if header :comparator "i;foo" "a" "b" {}', 1, 23, 'unknown comparator "i;foo"'),
        ('if header :comparator "i;ascii-numeric" "a" "1" {}', 1, 23, "comparator-i;ascii-numeric"),
        ('require "relational";\nif header :value "xx" "a" "1" {}', 2, 18, 'unknown relation "xx"'),
        ('if header :value "gt" "a" "1" {}', 1, 11, ':value needs require "relational"'),
        ('require "copy";\nredirect :copy;', 2, 1, "redirect takes 1 argument(s), 0 given"),
        ('require "vacation";\nvacation :days 0 "x";', 2, 16, ":days must be at least 1"),
        ('require "variables";\nset "1a" "x";', 2, 5, "is not a variable name"),
        ('require "date";\nif currentdate "fortnight" "1" {}', 2, 16, 'unknown date part "fortnight"'),
        ('require "date";\nif currentdate :zone "CET" "year" "1" {}', 2, 22, "+hhmm or -hhmm"),
        ("keep { stop; }", 1, 1, "keep takes no block"),
        ("if true;", 1, 1, "if needs a block"),
        ("if anyof (true false) {}", 1, 16, "true takes no test"),
        ('if header :regex "a" "b" {}', 1, 11, "header has no argument :regex"),
        ('if spamtest "5" {}', 1, 4, 'spamtest needs require "spamtest"'),
        ('require "spamtest";\nif spamtest :percent "5" {}', 2, 13, ':percent needs require "spamtestplus"'),
    ],
)
def test_validation_errors_carry_line_and_column(script: str, line: int, column: int, message: str):
    with pytest.raises(SieveError) as info:
        compile_script(script)
    assert (info.value.line, info.value.column) == (line, column), str(info.value)
    assert message in info.value.message


def test_every_extension_can_be_required_together():
    script = compile_script(
        'require ["fileinto", "reject", "ereject", "envelope", "body", "relational", "subaddress", "imap4flags",'
        ' "copy", "variables", "date", "vacation", "mailbox", "spamtestplus", "comparator-i;ascii-numeric"];'
        'if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50" { fileinto :create "Junk"; }'
    )
    assert "spamtestplus" in script.required


def test_script_size_limit():
    with pytest.raises(SieveError, match="larger than"):
        parse(b"#" * (MAX_SCRIPT_BYTES + 1))
    with pytest.raises(SieveError, match="larger than"):
        compile_script("keep;" + " " * (1024 * 1024))


def test_not_utf8_is_refused():
    with pytest.raises(SieveError, match="not UTF-8"):
        parse(b"keep; # \xff\n")


def test_ten_thousand_nested_ifs_are_refused_at_the_limit():
    script = "if true {\n" * 10_000 + "keep;" + "}" * 10_000
    with pytest.raises(SieveError) as info:
        parse(script)
    assert info.value.line == MAX_NESTING + 1
    assert "nested deeper" in info.value.message


def test_deeply_nested_tests_are_refused():
    script = "if " + "not " * 10_000 + "true { keep; }"
    with pytest.raises(SieveError, match="tests nested deeper"):
        parse(script)
    script = "if " + "anyof(" * 5_000 + "true" + ")" * 5_000 + " { keep; }"
    with pytest.raises(SieveError, match="tests nested deeper"):
        parse(script)


def test_nesting_within_the_limit_is_accepted():
    depth = MAX_NESTING
    compile_script("if true {\n" * depth + "keep;" + "}" * depth)


def test_identifiers_and_tags_are_case_insensitive():
    script = compile_script('REQUIRE "fileinto"; IF Header :CONTAINS "Subject" "x" { FileInto "A"; }')
    assert script.commands[1].tests[0].tagged == {"contains": None}


def test_huge_number_is_refused():
    with pytest.raises(SieveError, match="number too large"):
        parse("x 99999999999999999999G;")
