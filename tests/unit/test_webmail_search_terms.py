"""Search operators parsed from what the user typed (no database)."""

from __future__ import annotations

import datetime

import pytest

from webmail.search_terms import Terms, parse


def test_operators_and_free_text_are_separated() -> None:
    terms = parse('from:ann subject:"budget 2025" has:attachment is:unread after:2025-01-31 in:Archive invoice')
    assert terms == Terms(
        text="invoice",
        senders=["ann"],
        subjects=["budget 2025"],
        has_attachment=True,
        folder="Archive",
        unread=True,
        after=datetime.date(2025, 1, 31),
    )
    assert terms.has_filters


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("is:starred", Terms(starred=True)),
        ("IS:Read", Terms(unread=False)),
        ("is:unstarred", Terms(starred=False)),
        ("to:bob@example.com", Terms(recipients=["bob@example.com"])),
        ('filename:"q3 report.pdf"', Terms(filenames=["q3 report.pdf"])),
        ("before:2024/12/1", Terms(before=datetime.date(2024, 12, 1))),
        ("in:anywhere report", Terms(text="report", folder="all")),
        ('"exact phrase" -spam', Terms(text='"exact phrase" -spam')),
        ("http://example.com/x", Terms(text="http://example.com/x")),  # not an operator we know: plain text
        ("label:work", Terms(text="label:work")),
    ],
)
def test_table(query: str, expected: Terms) -> None:
    assert parse(query) == expected


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("before:yesterday", "before:yesterday is not understood"),
        ("after:2025-02-30", "after:2025-02-30 is not understood"),
        ("has:pictures", "has:pictures is not understood"),
        ("from:", "from: needs a value"),
        ('subject:""', "subject: needs a value"),
    ],
)
def test_values_that_cannot_be_used_are_reported(query: str, problem: str) -> None:
    terms = parse(query)
    assert terms.problems == [problem]
    assert not terms.has_filters
    assert terms.text == ""


def test_plain_text_has_no_filters() -> None:
    terms = parse("lunch on friday")
    assert terms.text == "lunch on friday"
    assert not terms.has_filters
