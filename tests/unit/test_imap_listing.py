"""LIST/LSUB arguments and answers (imapd.listing): RFC 5258 LIST-EXTENDED, RFC 3501 6.3.9 LSUB."""

from __future__ import annotations

import pytest

from imapd.listing import Entry, Folder, entries, list_response, lsub_entries, lsub_response, parse_list
from imapd.protocol import Atom, ParseError

# RFC 5258 5's example hierarchy (a subset): Fruit is not subscribed, Fruit/Banana is.
FOLDERS = [
    Folder("Fruit", ""),
    Folder("Fruit/Apple", ""),
    Folder("Fruit/Banana", ""),
    Folder("INBOX", "inbox"),
    Folder("Sent", "sent"),
    Folder("Vegetable", ""),
]
SUBSCRIBED = ["Fruit/Banana", "INBOX", "Sent", "Vegetable"]


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
    found = entries(parse_list([[Atom("SUBSCRIBED"), Atom("RECURSIVEMATCH")], b"", b"%"]), FOLDERS, SUBSCRIBED)
    assert list_response(found[0]) == b'* LIST (\\HasChildren) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    assert list_response(found[2]) == b'* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" "Sent"\r\n'
    assert names(found) == [
        ("Fruit", ["\\HasChildren"], True),
        ("INBOX", ["\\HasNoChildren", "\\Subscribed"], False),
        ("Sent", ["\\HasNoChildren", "\\Subscribed", "\\Sent"], False),
        ("Vegetable", ["\\HasNoChildren", "\\Subscribed"], False),
    ]
    found = entries(parse_list([[Atom("SUBSCRIBED")], b"", b"%"]), FOLDERS, SUBSCRIBED)
    assert [e.name for e in found] == ["INBOX", "Sent", "Vegetable"]


def test_special_use_selection() -> None:
    found = entries(parse_list([[Atom("SPECIAL-USE")], b"", b"*"]), FOLDERS, SUBSCRIBED)
    assert names(found) == [("Sent", ["\\HasNoChildren", "\\Sent"], False)]


def test_lsub_percent_rule() -> None:
    # RFC 3501 6.3.9: "foo/bar" subscribed, "foo" not: "%" returns foo, flagged \Noselect.
    found = lsub_entries("", "%", FOLDERS, SUBSCRIBED)
    assert lsub_response(found[0]) == b'* LSUB (\\Noselect \\HasChildren) "/" "Fruit"\r\n'
    assert names(found) == [
        ("Fruit", ["\\Noselect", "\\HasChildren"], False),
        ("INBOX", ["\\HasNoChildren"], False),
        ("Sent", ["\\HasNoChildren"], False),
        ("Vegetable", ["\\HasNoChildren"], False),
    ]
    assert [e.name for e in lsub_entries("", "*", FOLDERS, SUBSCRIBED)] == [
        "Fruit/Banana",
        "INBOX",
        "Sent",
        "Vegetable",
    ]


# RFC 5258 5, example 2: "Fruit/Peach" is subscribed but is no folder (deleted while still subscribed). Here
# "Gone/Child" too, with no "Gone" folder either.
WITH_NAMES_ONLY = [*SUBSCRIBED, "Fruit/Peach", "Gone/Child"]


def listed(args: list, subscribed: list[str] = WITH_NAMES_ONLY) -> bytes:
    return b"".join(list_response(e) for e in entries(parse_list(args), FOLDERS, subscribed))


def test_subscribed_lists_names_that_are_no_folder_as_nonexistent() -> None:
    # RFC 5258 3.1: SUBSCRIBED lists exactly the subscribed names matching the pattern, folders or not;
    # RFC 5258 3 and RFC 9051 7.3.1: \NonExistent for those that are not (the example answers
    # "(\Subscribed \NonExistent)"; the order of attributes carries no meaning, and \HasNoChildren is ours).
    assert listed([[Atom("SUBSCRIBED")], b"", b"*"]) == (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"\r\n'
        b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Fruit/Peach"\r\n'
        b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Gone/Child"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" "Sent"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable"\r\n'
    )
    # The same through IMAP4rev2's RETURN (SUBSCRIBED) beside the selection, and for one name.
    args = [[Atom("SUBSCRIBED")], b"", b"Fruit/Peach", Atom("RETURN"), [Atom("SUBSCRIBED")]]
    assert listed(args) == b'* LIST (\\HasNoChildren \\NonExistent \\Subscribed) "/" "Fruit/Peach"\r\n'


def test_return_subscribed_lists_folders_only() -> None:
    # RFC 5258 3.2: RETURN (SUBSCRIBED) tells the state of the folders listed; it selects nothing more.
    assert listed([b"", b"Fruit/*", Atom("RETURN"), [Atom("SUBSCRIBED")]]) == (
        b'* LIST (\\HasNoChildren) "/" "Fruit/Apple"\r\n* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"\r\n'
    )
    assert listed([b"", b"Gone*"]) == b""


def test_recursivematch_over_names_that_are_no_folder() -> None:
    # RFC 9051 6.3.9's table: a folder meeting no criterion with a child that does: "() + CHILDINFO"; a name that
    # is neither a folder nor subscribed, with a subscribed child: "(\NonExistent) + CHILDINFO".
    assert listed([[Atom("SUBSCRIBED"), Atom("RECURSIVEMATCH")], b"", b"%"]) == (
        b'* LIST (\\HasChildren) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        b'* LIST (\\HasNoChildren \\NonExistent) "/" "Gone" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" "Sent"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable"\r\n'
    )
    # Subscribed itself and with a subscribed child: "(<attr>) + CHILDINFO".
    subscribed = [*WITH_NAMES_ONLY, "Fruit"]
    assert listed([[Atom("SUBSCRIBED"), Atom("RECURSIVEMATCH")], b"", b"Fruit"], subscribed) == (
        b'* LIST (\\HasChildren \\Subscribed) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    )
    # Without RECURSIVEMATCH, neither parent is listed.
    assert b'"Gone"' not in listed([[Atom("SUBSCRIBED")], b"", b"%"])
    # SPECIAL-USE selects folders only: a subscribed name with no folder has no special use.
    assert listed([[Atom("SUBSCRIBED"), Atom("SPECIAL-USE")], b"", b"*"]) == (
        b'* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" "Sent"\r\n'
    )


def test_lsub_gives_names_that_are_no_folder() -> None:
    # RFC 3501 6.3.9: LSUB lists subscribed names; \Noselect only on an unsubscribed parent of one ("%").
    def lsub(pattern: str) -> bytes:
        return b"".join(lsub_response(e) for e in lsub_entries("", pattern, FOLDERS, WITH_NAMES_ONLY))

    assert lsub("Fruit/*") == (
        b'* LSUB (\\HasNoChildren) "/" "Fruit/Banana"\r\n* LSUB (\\HasNoChildren) "/" "Fruit/Peach"\r\n'
    )
    assert lsub("G%") == b'* LSUB (\\Noselect \\HasNoChildren) "/" "Gone"\r\n'
    assert lsub("Gone/%") == b'* LSUB (\\HasNoChildren) "/" "Gone/Child"\r\n'
