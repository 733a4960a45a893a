"""LIST/LSUB arguments and answers (imapd.listing): RFC 5258 LIST-EXTENDED, RFC 3501 6.3.9 LSUB."""

from __future__ import annotations

import pytest

from imapd.listing import Entry, Folder, entries, list_response, lsub_entries, lsub_response, parse_list
from imapd.protocol import Atom, ParseError

# RFC 5258 5's example hierarchy (a subset): Fruit is not subscribed, Fruit/Banana is.
FOLDERS = [
    Folder("Fruit", "", False),
    Folder("Fruit/Apple", "", False),
    Folder("Fruit/Banana", "", True),
    Folder("INBOX", "inbox", True),
    Folder("Sent", "sent", True),
    Folder("Vegetable", "", True),
]


def test_parse_list_forms() -> None:
    plain = parse_list([b"", Atom("*")])
    assert (plain.reference, plain.patterns, plain.extended) == ("", ["*"], False)
    selection = [Atom("subscribed"), Atom("RECURSIVEMATCH")]
    returns = [Atom("STATUS"), [Atom("messages")]]
    extended = parse_list([selection, b"", [b"A", b"B"], Atom("RETURN"), returns])
    assert extended.selection == {"SUBSCRIBED", "RECURSIVEMATCH"}
    assert extended.patterns == ["A", "B"]
    assert extended.returns == {"STATUS"}
    assert extended.status_items == ["MESSAGES"]
    assert extended.extended


@pytest.mark.parametrize(
    "args",
    [
        [b""],
        [[Atom("RECURSIVEMATCH")], b"", b"*"],
        [[Atom("BOGUS")], b"", b"*"],
        [b"", b"*", Atom("RETURN"), [Atom("BOGUS")]],
        [b"", b"*", Atom("RETURN"), [Atom("STATUS")]],
    ],
)
def test_parse_list_errors(args) -> None:
    with pytest.raises(ParseError):
        parse_list(args)


def names(found: list[Entry]) -> list[tuple[str, list[str], bool]]:
    return [(e.name, e.attributes, e.child_info) for e in found]


def test_subscribed_and_recursivematch() -> None:
    # RFC 5258 5, example 9: RECURSIVEMATCH gives the unsubscribed parent with CHILDINFO.
    found = entries(parse_list([[Atom("SUBSCRIBED"), Atom("RECURSIVEMATCH")], b"", b"%"]), FOLDERS)
    assert list_response(found[0]) == b'* LIST (\\HasChildren) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    assert list_response(found[2]) == b'* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" "Sent"\r\n'
    assert names(found) == [
        ("Fruit", ["\\HasChildren"], True),
        ("INBOX", ["\\HasNoChildren", "\\Subscribed"], False),
        ("Sent", ["\\HasNoChildren", "\\Subscribed", "\\Sent"], False),
        ("Vegetable", ["\\HasNoChildren", "\\Subscribed"], False),
    ]
    found = entries(parse_list([[Atom("SUBSCRIBED")], b"", b"%"]), FOLDERS)
    assert [e.name for e in found] == ["INBOX", "Sent", "Vegetable"]


def test_special_use_selection() -> None:
    found = entries(parse_list([[Atom("SPECIAL-USE")], b"", b"*"]), FOLDERS)
    assert names(found) == [("Sent", ["\\HasNoChildren", "\\Sent"], False)]


def test_lsub_percent_rule() -> None:
    # RFC 3501 6.3.9: "foo/bar" subscribed, "foo" not: "%" returns foo, flagged \Noselect.
    found = lsub_entries("", "%", FOLDERS)
    assert lsub_response(found[0]) == b'* LSUB (\\Noselect \\HasChildren) "/" "Fruit"\r\n'
    assert names(found) == [
        ("Fruit", ["\\Noselect", "\\HasChildren"], False),
        ("INBOX", ["\\HasNoChildren"], False),
        ("Sent", ["\\HasNoChildren"], False),
        ("Vegetable", ["\\HasNoChildren"], False),
    ]
    assert [e.name for e in lsub_entries("", "*", FOLDERS)] == ["Fruit/Banana", "INBOX", "Sent", "Vegetable"]
