"""Comparators and match types (RFC 4790, RFC 5228 2.7, RFC 5231), and :matches without backtracking."""

from __future__ import annotations

import pytest

from sieve.errors import SieveRuntimeError
from sieve.match import Pattern, matches, numeric


@pytest.mark.parametrize(
    ("pattern", "text", "variables"),
    [
        ("*", "", [""]),
        ("*", "abc", ["abc"]),
        ("?", "", None),
        ("a?c", "abc", ["b"]),
        ("a?c", "ac", None),
        ("[*] *", "[acme-users] [fwd] version 1.0", ["acme-users", "[fwd] version 1.0"]),
        ("*@*.*", "joe@example.org", ["joe", "example", "org"]),
        ("**x", "ax", ["", "a"]),
        ("*a*", "bab", ["b", "b"]),
        ("a*a", "a", None),
        ("a*a", "aa", [""]),
        ("\\*\\?\\\\", "*?\\", []),
        ("\\*", "x", None),
        ("?*?", "ab", ["a", "", "b"]),
        ("*.pdf", "REPORT.PDF", ["REPORT"]),
    ],
)
def test_matches_with_variables(pattern: str, text: str, variables: list[str] | None):
    found = Pattern(pattern, "i;ascii-casemap").match(text)
    assert found == (None if variables is None else [text, *variables])


def test_matches_is_case_sensitive_with_octet():
    assert Pattern("*.pdf", "i;octet").match("REPORT.PDF") is None


def test_casemap_folds_ascii_only():
    assert matches("is", "i;ascii-casemap", ["ÄBC"], ["Äbc"])[0]
    assert not matches("is", "i;ascii-casemap", ["ÄBC"], ["äbc"])[0]
    assert matches("contains", "i;ascii-casemap", ["Re: ÄBC REPORT"], ["nothing", "Äbc report"])[0]
    assert not matches("contains", "i;ascii-casemap", ["Re: ÄBC REPORT"], ["äbc"])[0]
    assert matches("is", "i;ascii-casemap", ["x", "Kelvin K"], ["KELVIN k"])[0]
    assert not matches("is", "i;ascii-casemap", ["\u212a"], ["k"])[0]  # KELVIN SIGN is not ASCII: not folded


def test_octet_is_and_contains_keep_case():
    assert matches("is", "i;octet", ["Bench"], ["bench", "Bench"])[0]
    assert not matches("is", "i;octet", ["Bench"], ["bench"])[0]
    assert matches("contains", "i;octet", ["a Bench run"], ["Bench"])[0]
    assert not matches("contains", "i;octet", ["a Bench run"], ["bench"])[0]


@pytest.mark.parametrize(
    ("text", "value"),
    [("42", 42), ("007abc", 7), ("", float("inf")), ("x1", float("inf")), ("  3", float("inf"))],
)
def test_ascii_numeric_values(text: str, value: float):
    assert numeric(text) == value


@pytest.mark.parametrize(
    ("relation", "value", "key", "expected"),
    [("gt", "10", "9", True), ("lt", "10", "9", False), ("eq", "010", "10", True), ("ne", "x", "1", True)],
)
def test_relational_value_numeric(relation: str, value: str, key: str, expected: bool):
    assert matches("value", "i;ascii-numeric", [value], [key], relation)[0] is expected


def test_relational_count_counts_values():
    assert matches("count", "i;ascii-numeric", ["a", "b", "c"], ["3"], "eq")[0]
    assert matches("count", "i;ascii-numeric", [], ["0"], "eq")[0]


def test_numeric_comparator_has_no_substring_match():
    with pytest.raises(SieveRuntimeError):
        matches("contains", "i;ascii-numeric", ["1"], ["1"])


def test_many_stars_against_a_long_near_miss_is_quick_to_refuse():
    # A backtracking matcher takes exponential time here; pieces found leftmost take one pass each.
    assert Pattern("*a" * 200 + "*b", "i;octet").match("a" * 100_000) is None
