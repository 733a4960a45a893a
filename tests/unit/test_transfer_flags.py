"""Flags carried by archives and remote servers: canonical system flags, keywords only when they are atoms."""

from __future__ import annotations

import pytest

from transfer.flags import normalise


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["\\SEEN", "\\flagged", "\\Recent", "\\Unknown"], ["\\Seen", "\\Flagged"]),
        (["$Label1", "$Label1", "todo", "Todo"], ["$Label1", "todo", "Todo"]),
        (["a b", "a\x00b", "(x)", "x{1", "x%", "x*", 'a"b', "a\\b", "a]b", "\u00fc", ""], []),
        (["[tag]x", "ok.-_:", "}", "$MDNSent"], ["ok.-_:", "}", "$MDNSent"]),
    ],
)
def test_normalise(flags: list[str], expected: list[str]) -> None:
    assert normalise(flags) == expected
