"""SORT and THREAD (RFC 5256) on rows, without a database: criteria, ORDEREDSUBJECT, REFERENCES, rendering."""

from __future__ import annotations

import datetime

import pytest

from imapd import ordering
from imapd.ordering import Node, Row
from imapd.protocol import Atom, ParseError

BASE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def row(uid: int, subject: str = "", *, day: int = 0, size: int = 0, sender: str = "", msgid: str = "", refs=()):
    return Row(
        uid=uid,
        internal_date=BASE + datetime.timedelta(days=uid),
        sent_date=BASE + datetime.timedelta(days=day) if day else None,
        size=size,
        subject=subject,
        from_mailbox=sender,
        to_mailbox="",
        cc_mailbox="",
        message_id=msgid,
        references=tuple(refs),
    )


def test_parse_sort_and_thread() -> None:
    criteria, keys = ordering.parse_sort([[Atom("REVERSE"), Atom("date"), Atom("SUBJECT")], Atom("UTF-8"), Atom("ALL")])
    assert criteria == [("DATE", True), ("SUBJECT", False)]
    assert keys == [Atom("ALL")]
    assert ordering.parse_thread([Atom("references"), Atom("US-ASCII"), Atom("ALL")]) == ("REFERENCES", [Atom("ALL")])
    for bad in (
        [[Atom("REVERSE")], Atom("UTF-8"), Atom("ALL")],
        [[Atom("COLOUR")], Atom("UTF-8"), Atom("ALL")],
        [[], Atom("UTF-8"), Atom("ALL")],
        [[Atom("DATE")], Atom("KOI8-R"), Atom("ALL")],
        [[Atom("DATE")], Atom("UTF-8")],
    ):
        with pytest.raises(ParseError):
            ordering.parse_sort(bad)
    with pytest.raises(ParseError):
        ordering.parse_thread([Atom("MAGIC"), Atom("UTF-8"), Atom("ALL")])


def test_sort_criteria_and_ties() -> None:
    rows = [
        row(1, "Re: beta", day=5, size=30, sender="zed"),
        row(2, "alpha", day=3, size=10, sender="Amy"),
        row(3, "[list] Fwd: Beta", size=20, sender="amy"),  # no Date: sorts by its internal date (day 3)
        row(4, "alpha (fwd)", day=1, size=20, sender="bob"),
    ]
    assert ordering.sort(rows, [("SIZE", False)]) == [2, 3, 4, 1]
    assert ordering.sort(rows, [("SIZE", True)]) == [1, 3, 4, 2]
    assert ordering.sort(rows, [("DATE", False)]) == [4, 2, 3, 1]
    assert ordering.sort(rows, [("ARRIVAL", True)]) == [4, 3, 2, 1]
    # RFC 5256 2.1 base subjects: "alpha" twice, "beta" twice; ties by sequence order.
    assert ordering.sort(rows, [("SUBJECT", False)]) == [2, 4, 1, 3]
    assert ordering.sort(rows, [("SUBJECT", False), ("SIZE", True)]) == [4, 2, 1, 3]
    # "amy" twice (case-insensitive), with equal dates: REVERSE keeps the tie in sequence order.
    assert ordering.sort(rows, [("FROM", False), ("DATE", True)]) == [2, 3, 4, 1]


def test_ordered_subject() -> None:
    rows = [
        row(1, "Hello", day=2),
        row(2, "Other", day=1),
        row(3, "Re: hello", day=3),
        row(4, "RE: Hello", day=4),
        row(5, "Re: other", day=5),
    ]
    # RFC 5256: the first message of a subject is the parent of all others, threads by first date.
    assert ordering.render_threads(ordering.ordered_subject(rows)) == b"(2 5)(1 (3)(4))"


def test_references_chain_branches_and_dummies() -> None:
    rows = [
        row(1, "A", day=1, msgid="<a>"),
        row(2, "Re: A", day=2, msgid="<b>", refs=["<a>"]),
        row(3, "Re: A", day=3, msgid="<c>", refs=["<a>", "<b>"]),
        row(4, "Re: A", day=4, msgid="<d>", refs=["<a>"]),
        # Two replies to a message not in the set: a dummy parent holds them.
        row(5, "Q", day=5, msgid="<e>", refs=["<gone>"]),
        row(6, "Re: Q", day=6, msgid="<f>", refs=["<gone>"]),
        # A reply whose parent is missing and has no sibling: promoted to the root.
        row(7, "Z", day=7, msgid="<g>", refs=["<also-gone>"]),
    ]
    threads = ordering.references(rows)
    assert ordering.render_threads(threads) == b"(1 (2 3)(4))((5)(6))(7)"
    # Sequence numbers instead of UIDs.
    numbers = {uid: uid + 10 for uid in range(1, 8)}
    assert ordering.render_threads(threads, numbers) == b"(11 (12 13)(14))((15)(16))(17)"


def test_references_gathers_roots_by_subject() -> None:
    rows = [
        row(1, "Lunch", day=1, msgid="<x1>"),
        row(2, "Re: Lunch", day=2, msgid="<x2>"),  # no References: joined by its subject, as a reply
        row(3, "Lunch", day=3, msgid="<x3>"),  # same subject, not a reply: both go under a dummy
        row(4, "", day=4, msgid="<x4>"),
    ]
    assert ordering.render_threads(ordering.references(rows)) == b"((1 2)(3))(4)"


def test_references_survives_loops_duplicates_and_depth() -> None:
    rows = [
        row(1, "a", day=1, msgid="<m1>", refs=["<m2>"]),
        row(2, "b", day=2, msgid="<m2>", refs=["<m1>"]),  # a loop: one link is refused
        row(3, "c", day=3, msgid="<m1>"),  # a duplicate Message-ID becomes a message of its own
    ]
    rendered = ordering.render_threads(ordering.references(rows))
    assert sorted(int(n) for n in rendered.replace(b"(", b" ").replace(b")", b" ").split()) == [1, 2, 3]
    # A reply chain far deeper than Python's recursion limit.
    chain = [row(1, "deep", day=1, msgid="<d1>")]
    chain += [row(n, "Re: deep", day=n, msgid=f"<d{n}>", refs=[f"<d{n - 1}>"]) for n in range(2, 5001)]
    rendered = ordering.render_threads(ordering.references(chain))
    assert rendered == b"(" + b" ".join(b"%d" % n for n in range(1, 5001)) + b")"
    branchy = [row(1, "t", day=1, msgid="<b1>")]
    for n in range(2, 3001):
        branchy.append(row(n, "t", day=n, msgid=f"<b{n}>", refs=[f"<b{n - 1 if n % 2 == 0 else n - 2}>"]))
    assert ordering.render_threads(ordering.references(branchy)).count(b"(") > 1000


def test_render_rfc_example_shape() -> None:
    # RFC 5256 4: (3 6 (4 23)(44 7 96)) is 3 -> 6 -> {4 -> 23, 44 -> 7 -> 96}.
    n = {k: Node(k) for k in (3, 6, 4, 23, 44, 7, 96)}
    n[3].children = [n[6]]
    n[6].children = [n[4], n[44]]
    n[4].children = [n[23]]
    n[44].children = [n[7]]
    n[7].children = [n[96]]
    assert ordering.render_threads([Node(2), n[3]]) == b"(2)(3 6 (4 23)(44 7 96))"
