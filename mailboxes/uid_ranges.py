"""A set of IMAP UID ranges in a statement written by hand (STORE, FETCH): a join with the ranges, merged first
(overlapping ranges would give a message twice), so that PostgreSQL reads the folder's (mailbox, uid) index once
per range. A queryset of the same set is built and compiled per command, which cost more than the read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection

_JOIN = {
    "postgresql": "JOIN unnest(%s::bigint[], %s::bigint[]) AS r (low, high) ON {uid} BETWEEN r.low AND r.high",
    "sqlite": "JOIN json_each(%s) AS r "
    "ON {uid} BETWEEN json_extract(r.value, '$[0]') AND json_extract(r.value, '$[1]')",
}


def join(uid: str, vendor: str | None = None) -> str:
    """The join, on the UID column `uid` (as the statement names it), for `vendor` (default: the connection's);
    its parameters are `parameters(ranges)`."""
    return _JOIN[vendor or connection.vendor].format(uid=uid)


def parameters(ranges: Sequence[tuple[int, int]]) -> list[Any]:
    found = merged(ranges)
    if connection.vendor == "postgresql":
        return [[low for low, _ in found], [high for _, high in found]]
    return [json.dumps(found)]


def merged(ranges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """UID ranges (which may overlap) merged, ascending."""
    found: list[list[int]] = []
    for low, high in sorted(ranges):
        if found and low <= found[-1][1] + 1:
            found[-1][1] = max(found[-1][1], high)
        else:
            found.append([low, high])
    return found
