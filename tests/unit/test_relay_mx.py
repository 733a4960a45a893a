"""MX ordering (RFC 5321 5.1) and null MX recognition (RFC 7505), from plain values."""

from __future__ import annotations

import random
from collections import Counter

from relay.mx import is_null_mx, order_mx


def test_sorted_by_preference():
    records = [(20, "b.example"), (5, "a.example"), (30, "c.example")]
    assert order_mx(records, random.Random(1)) == ["a.example", "b.example", "c.example"]


def test_equal_preferences_come_in_random_order_but_always_before_higher_ones():
    records = [(10, "x.example"), (10, "y.example"), (10, "z.example"), (20, "backup.example")]
    firsts = Counter()
    for seed in range(300):
        order = order_mx(records, random.Random(seed))
        assert order[-1] == "backup.example"
        assert sorted(order[:3]) == ["x.example", "y.example", "z.example"]
        firsts[order[0]] += 1
    # Each of the three equal hosts leads about a third of the time.
    assert set(firsts) == {"x.example", "y.example", "z.example"}
    assert min(firsts.values()) > 60


def test_null_mx():
    assert is_null_mx([(0, ".")])
    assert is_null_mx([(0, "")])
    assert not is_null_mx([(0, "."), (10, "mx.example")])  # broken mixture: the real host is used
    assert not is_null_mx([(10, "mx.example")])
    assert not is_null_mx([])
