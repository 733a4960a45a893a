"""LIST/LSUB patterns (RFC 3501 6.3.8) matched by imapd.list_pattern, against a plain recursive reference."""

from __future__ import annotations

import functools
import itertools

import pytest

from imapd.list_pattern import compile_pattern
from imapd.protocol import ParseError

NAMES = ["INBOX", "INBOX/Sub", "Archive", "Archive/2023", "Archive/2023/Q1", "a%b", "a*b", "x", "", "foo[bar"]

CASES = [
    ("", "*", [n for n in NAMES if n]),
    ("", "%", ["INBOX", "Archive", "a%b", "a*b", "x", "foo[bar"]),
    ("", "Archive/%", ["Archive/2023"]),
    ("", "Archive/*", ["Archive/2023", "Archive/2023/Q1"]),
    ("Archive/", "%", ["Archive/2023"]),
    ("Archive/", "/x", []),  # a pattern starting with the delimiter ignores the reference
    ("", "inbox", ["INBOX"]),
    ("", "InBoX/%", ["INBOX/Sub"]),
    ("", "%/%/%", ["Archive/2023/Q1"]),
    ("", "A*3", ["Archive/2023"]),
    ("", "*%*%*%*%x", ["x"]),
    ("", "foo[*", ["foo[bar"]),
]


@pytest.mark.parametrize(("reference", "pattern", "expected"), CASES)
def test_patterns(reference: str, pattern: str, expected: list[str]) -> None:
    matcher = compile_pattern(reference, pattern)
    assert [name for name in NAMES if name and matcher.matches(name)] == [n for n in NAMES if n in expected]


def reference_match(pattern: str, name: str) -> bool:
    @functools.cache
    def match(p: int, n: int) -> bool:
        if p == len(pattern):
            return n == len(name)
        if pattern[p] == "*":
            return match(p + 1, n) or (n < len(name) and match(p, n + 1))
        if pattern[p] == "%":
            return match(p + 1, n) or (n < len(name) and name[n] != "/" and match(p, n + 1))
        return n < len(name) and name[n] == pattern[p] and match(p + 1, n + 1)

    return match(0, 0)


def test_every_short_pattern_agrees_with_the_reference() -> None:
    names = ["", "a", "ab", "a/b", "/", "ba/", "aab/b", "b/a/b"]
    for length in range(5):
        for letters in itertools.product("ab/*%", repeat=length):
            pattern = "".join(letters)
            matcher = compile_pattern("", pattern)
            for name in names:
                assert matcher.matches(name) == reference_match(pattern, name), (pattern, name)


def test_the_hostile_pattern_of_the_issue_is_answered() -> None:
    # x LIST "" "*%*%...%x": exponential for a backtracking regular expression, a few steps here.
    matcher = compile_pattern("", "*%" * 5000 + "x")
    assert matcher.matches("a" * 500 + "x")
    assert not matcher.matches("a" * 500 + "y")
    assert not compile_pattern("", "a*" * 8000).matches("a" * 512)
    with pytest.raises(ParseError, match="too long"):
        compile_pattern("", "*%" * 8192 + "x")
