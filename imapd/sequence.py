"""Sequence sets (RFC 3501 9, sequence-set) and their mapping from message numbers to UIDs (pure: no Django)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from imapd.protocol import Atom, ParseError, Token

_RANGE = re.compile(r"(\d+|\*)(?::(\d+|\*))?\Z")
STAR = -1
MAX_UID = 2**32 - 1


def parse(token: Token) -> list[tuple[int, int]]:
    """Ranges as written; STAR stands for "*". Zero and malformed sets are a ParseError."""
    if not isinstance(token, Atom):
        raise ParseError("Invalid sequence set")
    ranges = []
    for piece in token.split(","):
        match = _RANGE.match(piece)
        if match is None:
            raise ParseError(f"Invalid sequence set {token}")
        low = STAR if match[1] == "*" else int(match[1])
        high = low if match[2] is None else (STAR if match[2] == "*" else int(match[2]))
        if low == 0 or high == 0 or max(low, high) > MAX_UID:
            raise ParseError(f"Invalid sequence set {token}")
        ranges.append((low, high))
    return ranges


def is_sequence_set(token: Token) -> bool:
    try:
        parse(token)
    except ParseError:
        return False
    return True


def _resolve(ranges: list[tuple[int, int]], star: int) -> list[tuple[int, int]]:
    out = []
    for low, high in ranges:
        low = star if low == STAR else low
        high = star if high == STAR else high
        out.append((min(low, high), max(low, high)))
    return out


def uid_ranges(ranges: list[tuple[int, int]], uids: Sequence[int], *, by_uid: bool) -> list[tuple[int, int]]:
    """The UID ranges a set names, against the session's view `uids` (ascending).

    Message numbers beyond the view are an error (RFC 3501 9, seq-number). With UIDs, "*" is the highest UID
    in the view, and "n:*" with n above it still names that message (RFC 3501 6.4.8).
    """
    if by_uid:
        return _resolve(ranges, uids[-1] if uids else 0)
    out = []
    for low, high in _resolve(ranges, len(uids)):
        if low < 1 or high > len(uids):
            raise ParseError("Message sequence number out of range")
        out.append((uids[low - 1], uids[high - 1]))
    return out


def uids_in(ranges: list[tuple[int, int]], uids: Sequence[int]) -> list[int]:
    """The UIDs of the view that fall in these ranges, ascending."""
    picked: set[int] = set()
    for low, high in ranges:
        picked.update(uids[bisect.bisect_left(uids, low) : bisect.bisect_right(uids, high)])
    return sorted(picked)


def runs(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Ascending numbers as ranges of consecutive ones: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def compress(numbers: Sequence[int]) -> str:
    """Ascending numbers as a compact set: 1:3,7,9:10 (COPYUID, ESEARCH-style replies)."""
    pieces = []
    start = prev = None
    for n in numbers:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            pieces.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    if start is not None:
        pieces.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(pieces)


def text(ranges: Sequence[tuple[int, int]]) -> str:
    """Ascending, disjoint ranges as a set: [(1, 3), (7, 7)] -> 1:3,7."""
    return ",".join(str(low) if low == high else f"{low}:{high}" for low, high in ranges)


def missing(ranges: Sequence[tuple[int, int]], uids: Sequence[int]) -> list[tuple[int, int]]:
    """The parts of `ranges` (low <= high each) where `uids` (ascending) has no number, ascending and merged."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:  # overlaps or touches the gap before: go on from its end
            low = out[-1][1] + 1
            if low > high:
                continue
        index = bisect.bisect_left(uids, low)
        while low <= high:
            present = uids[index] if index < len(uids) else high + 1
            if present > low:
                gap_end = min(present - 1, high)
                if out and out[-1][1] + 1 == low:
                    out[-1] = (out[-1][0], gap_end)
                else:
                    out.append((low, gap_end))
            low = present + 1
            index += 1
    return out
