"""What LIST and LSUB answer (RFC 3501 6.3.8-6.3.9, LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154), without
I/O: the arguments parsed into a `ListRequest`, the folders chosen and given their attributes by `entries`,
and each entry's response line. The session sends the lines and adds STATUS responses (LIST-STATUS, RFC 5819)."""

from __future__ import annotations

from collections.abc import Sequence
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
    subscribed: bool


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


def entries(request: ListRequest, folders: Sequence[Folder]) -> list[Entry]:
    """The LIST responses for `request`, in folder order."""
    matchers = [compile_pattern(request.reference, p) for p in request.patterns if p]
    with_children = {parent for f in folders for parent in _parents(f.name)}
    subscribed_only = "SUBSCRIBED" in request.selection
    special_only = "SPECIAL-USE" in request.selection
    show_subscribed = subscribed_only or "SUBSCRIBED" in request.returns
    # Parents of a folder meeting the selection criteria (RFC 5258 3.5, CHILDINFO).
    meeting = {
        f.name for f in folders if (not subscribed_only or f.subscribed) and (not special_only or f.role in SPECIAL_USE)
    }
    parents_of_meeting = {parent for name in meeting for parent in _parents(name)}

    def matches(name: str) -> bool:
        return any(m.matches(name) for m in matchers)

    out = []
    for folder in folders:
        if not matches(folder.name):
            continue
        meets = folder.name in meeting
        child_info = "RECURSIVEMATCH" in request.selection and subscribed_only and folder.name in parents_of_meeting
        if not meets and not child_info:
            continue
        attributes = ["\\HasChildren" if folder.name in with_children else "\\HasNoChildren"]
        if show_subscribed and folder.subscribed:
            attributes.append("\\Subscribed")
        if folder.role in SPECIAL_USE:
            attributes.append(SPECIAL_USE[folder.role])
        out.append(Entry(folder.name, attributes, child_info))
    return out


def lsub_entries(reference: str, pattern: str, folders: Sequence[Folder]) -> list[Entry]:
    """LSUB (RFC 3501 6.3.9): subscribed folders matching the pattern; and a parent that is not itself
    subscribed, when it matches but a subscribed folder below it does not (the "%" case), with \\Noselect."""
    matcher: Pattern = compile_pattern(reference, pattern)
    subscribed = {f.name for f in folders if f.subscribed}
    with_children = {parent for f in folders for parent in _parents(f.name)}

    def children(name: str) -> str:
        return "\\HasChildren" if name in with_children else "\\HasNoChildren"

    out: dict[str, Entry] = {}
    for folder in folders:
        if not folder.subscribed:
            continue
        if matcher.matches(folder.name):
            out[folder.name] = Entry(folder.name, [children(folder.name)])
            continue
        for parent in _parents(folder.name):
            if parent not in subscribed and parent not in out and matcher.matches(parent):
                out[parent] = Entry(parent, ["\\Noselect", children(parent)], selectable=False)
    return sorted(out.values(), key=lambda e: e.name)


def list_response(entry: Entry) -> bytes:
    extra = b' ("CHILDINFO" ("SUBSCRIBED"))' if entry.child_info else b""
    return b'* LIST (%s) "/" %s%s\r\n' % (" ".join(entry.attributes).encode(), string(entry.name), extra)


def lsub_response(entry: Entry) -> bytes:
    return b'* LSUB (%s) "/" %s\r\n' % (" ".join(entry.attributes).encode(), string(entry.name))
