"""What LIST and LSUB answer (RFC 3501 6.3.8-6.3.9, LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154), without
I/O: the arguments parsed into a `ListRequest`, the folders chosen and given their attributes by `entries`,
and each entry's response line. The session sends the lines and adds STATUS responses (LIST-STATUS, RFC 5819)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from imapd.list_pattern import DELIMITER, Pattern, compile_pattern
from imapd.protocol import Atom, ParseError, Token, astring
from mailcore.imap_wire import string

SPECIAL_USE = {"sent": "\\Sent", "drafts": "\\Drafts", "trash": "\\Trash", "junk": "\\Junk", "archive": "\\Archive"}
SELECTION_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"})


@dataclass(frozen=True)
class Folder:
    name: str  # as on the wire (modified UTF-7)
    role: str


@dataclass
class ListRequest:
    reference: str
    patterns: list[str]
    selection: set[str] = field(default_factory=set)
    returns: set[str] = field(default_factory=set)
    status_items: list[str] = field(default_factory=list)  # RETURN (STATUS (...)), upper case
    extended: bool = False  # selection or return options were given, or several patterns (RFC 5258 3)


@dataclass
class Entry:
    name: str
    attributes: list[str]
    child_info: bool = False  # ("CHILDINFO" ("SUBSCRIBED")) (RFC 5258 3.5)
    selectable: bool = True


def _atoms(token: Token, what: str) -> list[str]:
    if not isinstance(token, list):
        raise ParseError(f"{what} must be a list")
    return [astring(t).upper() for t in token if not isinstance(t, list)]


def parse_list(args: list[Token]) -> ListRequest:
    """LIST [(selection options)] reference (pattern | (patterns)) [RETURN (return options)]."""
    args = list(args)
    selection: list[str] = []
    if args and isinstance(args[0], list):
        selection = _atoms(args.pop(0), "Selection options")
    returns: list[str] = []
    status_items: list[str] = []
    if len(args) == 4 and isinstance(args[2], Atom) and args[2].upper() == "RETURN":
        options = args[3]
        if not isinstance(options, list):
            raise ParseError("RETURN needs a list of options")
        for index, option in enumerate(options):
            if isinstance(option, list):
                if index == 0 or returns[-1] != "STATUS":
                    raise ParseError("Unexpected list in RETURN options")
                status_items = _atoms(option, "STATUS items")
                continue
            returns.append(astring(option).upper())
        if "STATUS" in returns and not status_items:
            raise ParseError("RETURN (STATUS) needs a list of items")
        args = args[:2]
    if len(args) != 2:
        raise ParseError("LIST takes a reference and a pattern")
    reference = astring(args[0])
    patterns = [astring(p) for p in args[1]] if isinstance(args[1], list) else [astring(args[1])]
    for option in selection:
        if option not in SELECTION_OPTIONS:
            raise ParseError(f"Unknown LIST selection option {option}")
    # RFC 5258 3.1: RECURSIVEMATCH alone is an error; unknown return options are too (RFC 5258 3.2).
    if "RECURSIVEMATCH" in selection and not set(selection) - {"RECURSIVEMATCH", "REMOTE"}:
        raise ParseError("RECURSIVEMATCH needs another selection option")
    for option in returns:
        if option not in RETURN_OPTIONS:
            raise ParseError(f"Unknown LIST return option {option}")
    return ListRequest(
        reference,
        patterns,
        set(selection),
        set(returns),
        status_items,
        extended=bool(selection or returns or isinstance(args[1], list)),
    )


def _parents(name: str) -> list[str]:
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:depth]) for depth in range(1, len(parts))]


def entries(request: ListRequest, folders: Sequence[Folder], subscribed: Collection[str]) -> list[Entry]:
    """The LIST responses for `request`, in name order. `subscribed` holds the subscribed names (as on the
    wire), which need not be folders'."""
    matchers = [compile_pattern(request.reference, p) for p in request.patterns if p]
    roles = {f.name: f.role for f in folders}
    subscribed = set(subscribed)
    with_children = {parent for name in roles for parent in _parents(name)}
    subscribed_only = "SUBSCRIBED" in request.selection
    special_only = "SPECIAL-USE" in request.selection
    show_subscribed = subscribed_only or "SUBSCRIBED" in request.returns
    # RFC 5258 3.1: SUBSCRIBED lists the subscribed names, folders or not; without it, only folders are listed.
    candidates = subscribed if subscribed_only else roles.keys()
    meeting = {name for name in candidates if not special_only or roles.get(name) in SPECIAL_USE}
    # RFC 5258 3.5 (CHILDINFO): a name with a descendant meeting the selection criteria is listed too, itself a
    # folder or not (RFC 9051 6.3.9's table: "(\NonExistent) + CHILDINFO").
    recursive = "RECURSIVEMATCH" in request.selection and subscribed_only
    parents_of_meeting = {parent for name in meeting for parent in _parents(name)} if recursive else set()

    out = []
    for name in sorted(meeting | parents_of_meeting):
        if not any(m.matches(name) for m in matchers):
            continue
        exists = name in roles
        attributes = ["\\HasChildren" if name in with_children else "\\HasNoChildren"]
        if not exists:
            attributes.append("\\NonExistent")  # RFC 5258 3, RFC 9051 7.3.1; it implies \Noselect (RFC 5258 3.4)
        if show_subscribed and name in subscribed:
            attributes.append("\\Subscribed")
        if roles.get(name) in SPECIAL_USE:
            attributes.append(SPECIAL_USE[roles[name]])
        out.append(Entry(name, attributes, name in parents_of_meeting, selectable=exists))
    return out


def lsub_entries(reference: str, pattern: str, folders: Sequence[Folder], subscribed: Collection[str]) -> list[Entry]:
    """LSUB (RFC 3501 6.3.9): subscribed names matching the pattern, folders or not; and a parent that is not
    itself subscribed, when it matches but a subscribed name below it does not (the "%" case), with \\Noselect.
    A subscribed name that is no folder has no \\Noselect: in LSUB that would say it is not subscribed."""
    matcher: Pattern = compile_pattern(reference, pattern)
    subscribed = set(subscribed)
    with_children = {parent for f in folders for parent in _parents(f.name)}

    def children(name: str) -> str:
        return "\\HasChildren" if name in with_children else "\\HasNoChildren"

    out: dict[str, Entry] = {}
    for name in sorted(subscribed):
        if matcher.matches(name):
            out[name] = Entry(name, [children(name)])
            continue
        for parent in _parents(name):
            if parent not in subscribed and parent not in out and matcher.matches(parent):
                out[parent] = Entry(parent, ["\\Noselect", children(parent)], selectable=False)
    return sorted(out.values(), key=lambda e: e.name)


def list_response(entry: Entry) -> bytes:
    extra = b' ("CHILDINFO" ("SUBSCRIBED"))' if entry.child_info else b""
    return b'* LIST (%s) "/" %s%s\r\n' % (" ".join(entry.attributes).encode(), string(entry.name), extra)


def lsub_response(entry: Entry) -> bytes:
    return b'* LSUB (%s) "/" %s\r\n' % (" ".join(entry.attributes).encode(), string(entry.name))
