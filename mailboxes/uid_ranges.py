"""A folder's messages in a set of IMAP UID ranges, for statements written by hand (STORE, FETCH).

The ranges travel as two arrays (merged first: overlapping ranges would give a message twice), and the folder's
(mailbox, uid) index is read once per range: a nested loop over the ranges, the messages inside it. Written as a
plain join, PostgreSQL may turn the loop around and, for each message of the folder, try every range (a FETCH
batch of 500 messages in 400 ranges read all 17,000 messages of its folder, 400 ms); a subquery per range
(LATERAL, with a LIMIT, which keeps PostgreSQL from merging it into the join) leaves it no such choice. The LIMIT
is what the range can hold (UIDs are unique in a folder) and it also tells the planner a tenth of its default guess
of the messages per range, which would otherwise cross the cost at which PostgreSQL compiles a statement with JIT
(15 ms more for a 3 ms read). A queryset of the same set (an OR per range) is built and compiled per command,
which cost more than the read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection

from mailboxes.models import Message

_MESSAGES = Message._meta.db_table
_SOURCE = {
    "postgresql": "unnest(%s::bigint[], %s::bigint[]) AS r (low, high) CROSS JOIN LATERAL "
    f"(SELECT * FROM {_MESSAGES} WHERE mailbox_id = %s AND uid BETWEEN r.low AND r.high "
    "LIMIT r.high - r.low + 1) AS {alias}",
    "sqlite": f"json_each(%s) AS r JOIN {_MESSAGES} AS {{alias}} ON {{alias}}.mailbox_id = %s "
    "AND {alias}.uid BETWEEN json_extract(r.value, '$[0]') AND json_extract(r.value, '$[1]')",
}


def source(alias: str, vendor: str | None = None) -> str:
    """The FROM item: the messages, named `alias`, of the folder in the ranges, for `vendor` (default: the
    connection's); its parameters are `parameters(ranges, folder)`. They come in no particular order."""
    return _SOURCE[vendor or connection.vendor].format(alias=alias)


def parameters(ranges: Sequence[tuple[int, int]], mailbox_id: int) -> list[Any]:
    found = merged(ranges)
    if connection.vendor == "postgresql":
        return [[low for low, _ in found], [high for _, high in found], mailbox_id]
    return [json.dumps(found), mailbox_id]


def merged(ranges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """UID ranges (which may overlap) merged, ascending."""
    found: list[list[int]] = []
    for low, high in sorted(ranges):
        if found and low <= found[-1][1] + 1:
            found[-1][1] = max(found[-1][1], high)
        else:
            found.append([low, high])
    return found
