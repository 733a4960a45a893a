"""Comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and match types (RFC 5228 2.7.1:
:is, :contains, :matches; RFC 5231: :value, :count).

`:matches` is matched without backtracking: the pattern is cut at its "*"s into pieces of fixed length (the
characters and "?"s between stars); the first piece is anchored at the start, the last at the end, and each
piece between is found at its leftmost place. That is linear in the text for each piece, whatever the pattern,
and gives the shortest match for each "*" from left to right, which is what RFC 5229 3.2's example expects of
the match variables.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Sequence

from sieve.errors import SieveRuntimeError

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LEADING_DIGITS = re.compile(r"[0-9]+")


def fold(comparator: str, text: str) -> str:
    if comparator != "i;ascii-casemap":
        return text
    # On ASCII text str.lower() changes A-Z alone; elsewhere it would fold non-ASCII letters too (RFC 4790 9.2).
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def numeric(text: str) -> float:
    """RFC 4790 9.1.1: the value of the leading digits; a string not starting with a digit is positive infinity."""
    m = _LEADING_DIGITS.match(text)
    return int(m[0]) if m else math.inf


def _compare(comparator: str, a: str, b: str) -> int:
    if comparator == "i;ascii-numeric":
        x: float | str = numeric(a)
        y: float | str = numeric(b)
    else:
        x, y = fold(comparator, a), fold(comparator, b)
    return (x > y) - (x < y)  # type: ignore[operator]


_RELATIONS = {
    "gt": lambda c: c > 0,
    "ge": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "le": lambda c: c <= 0,
    "eq": lambda c: c == 0,
    "ne": lambda c: c != 0,
}


class Pattern:
    """A compiled :matches pattern; `match(text)` gives the match variables (RFC 5229 3.2) or None."""

    def __init__(self, pattern: str, comparator: str) -> None:
        self.comparator = comparator
        pieces: list[list[str | None]] = [[]]  # None stands for "?"
        self.order: list[str] = []  # "*" or "?" in pattern order, for the match variables
        i = 0
        while i < len(pattern):
            char = pattern[i]
            if char == "\\" and i + 1 < len(pattern):
                i += 1
                pieces[-1].append(pattern[i])
            elif char == "*":
                pieces.append([])
                self.order.append("*")
            elif char == "?":
                pieces[-1].append(None)
                self.order.append("?")
            else:
                pieces[-1].append(char)
            i += 1
        self.last_length = len(pieces[-1])
        self.pieces = [
            re.compile("".join("(.)" if c is None else re.escape(fold(comparator, c)) for c in piece), re.S)
            for piece in pieces
        ]

    def match(self, text: str) -> list[str] | None:
        folded = fold(self.comparator, text)
        first = self.pieces[0]
        if len(self.pieces) == 1:
            m = first.fullmatch(folded)
            return [text, *(text[m.start(g) : m.end(g)] for g in range(1, m.re.groups + 1))] if m else None
        m = first.match(folded)
        if m is None:
            return None
        found = [m]
        pos = m.end()
        last = self.pieces[-1]
        last_start = len(folded) - self.last_length
        if last_start < pos:
            return None
        for piece in self.pieces[1:-1]:
            m = piece.search(folded, pos, last_start)
            if m is None:
                return None
            found.append(m)
            pos = m.end()
        m = last.fullmatch(folded, last_start)
        if m is None:
            return None
        found.append(m)
        # Variables in pattern order: each "*" spans the gap between two pieces, each "?" is its group.
        values = [text]
        stars = itertools.pairwise(found)
        piece_index = 0
        group = 1
        for kind in self.order:
            if kind == "*":
                before, after = next(stars)
                values.append(text[before.end() : after.start()])
                piece_index += 1
                group = 1
            else:
                current = found[piece_index]
                values.append(text[current.start(group) : current.end(group)])
                group += 1
        return values


# A script's patterns are the same for every message it runs on: each is compiled once (a pattern made from
# variables may differ each time, hence a bounded cache). A Pattern does not change once made.
_pattern = functools.lru_cache(maxsize=1024)(Pattern)


def matches(
    match_type: str,
    comparator: str,
    values: Sequence[str],
    keys: Sequence[str],
    relation: str | None = None,
) -> tuple[bool, list[str] | None]:
    """Whether any value matches any key; for :matches, also the match variables of the first match."""
    if match_type == "count":
        assert relation is not None
        count = str(len(values))
        return any(_RELATIONS[relation](_compare(comparator, count, key)) for key in keys), None
    if comparator == "i;ascii-numeric" and match_type in ("contains", "matches"):
        raise SieveRuntimeError(f"comparator i;ascii-numeric does not support :{match_type}")
    if not values:
        return False, None
    if match_type == "matches":
        patterns = [_pattern(key, comparator) for key in keys]
        for value in values:
            for pattern in patterns:
                variables = pattern.match(value)
                if variables is not None:
                    return True, variables
        return False, None
    if match_type == "contains" or (match_type == "is" and comparator != "i;ascii-numeric"):
        # Each key and each value folded once, not once for each pair.
        folded_keys = [fold(comparator, key) for key in keys]
        for value in values:
            folded = fold(comparator, value)
            if folded in folded_keys if match_type == "is" else any(key in folded for key in folded_keys):
                return True, None
        return False, None
    for value in values:
        for key in keys:
            if match_type == "is":
                if _compare(comparator, value, key) == 0:
                    return True, None
            elif match_type == "value":
                assert relation is not None
                if _RELATIONS[relation](_compare(comparator, value, key)):
                    return True, None
    return False, None
