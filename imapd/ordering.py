"""SORT and THREAD (RFC 5256) over rows the store read, without Django or I/O.

`parse_sort` and `parse_thread` read the command arguments up to the search keys; `sort` orders rows by the
criteria; `ordered_subject` and `references` build threads and `render_threads` writes them in the response's
nested-list form. Every comparison falls back on the message's position in the folder (its UID), as
RFC 5256 3 asks for ties.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imapd.protocol import Atom, ParseError, Token, astring
from mailcore.subject import base_subject

SORT_KEYS = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"})
THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")


@dataclass(frozen=True)
class Row:
    """What SORT and THREAD need of one message."""

    uid: int
    internal_date: datetime.datetime
    sent_date: datetime.datetime | None  # the Date: header, None when absent or unreadable
    size: int
    subject: str
    from_mailbox: str  # RFC 5256 3: the addr-mailbox of the first address, as written
    to_mailbox: str
    cc_mailbox: str
    message_id: str
    references: tuple[str, ...]  # References, or In-Reply-To when there is none (as the store keeps them)

    @property
    def date(self) -> datetime.datetime:
        """RFC 5256 2.2: the sent date, or the internal date when there is no usable Date: header."""
        return self.sent_date or self.internal_date


def _criteria(token: Token) -> list[tuple[str, bool]]:
    if not isinstance(token, list) or not token:
        raise ParseError("SORT needs a list of criteria")
    out = []
    reverse = False
    for item in token:
        if not isinstance(item, Atom):
            raise ParseError("Invalid sort criterion")
        name = item.upper()
        if name == "REVERSE":
            if reverse:
                raise ParseError("REVERSE twice")
            reverse = True
            continue
        if name not in SORT_KEYS:
            raise ParseError(f"Unknown sort criterion {name}")
        out.append((name, reverse))
        reverse = False
    if reverse:
        raise ParseError("REVERSE must precede a criterion")
    return out


def _charset(token: Token) -> str:
    charset = astring(token).upper()
    if charset not in ("UTF-8", "US-ASCII"):
        raise ParseError(f"Unsupported charset {charset}")
    return charset


def parse_sort(args: list[Token]) -> tuple[list[tuple[str, bool]], list[Token]]:
    """SORT (criteria) charset search-keys: the criteria (name, reversed) and the search tokens."""
    if len(args) < 3:
        raise ParseError("SORT needs criteria, a charset and search keys")
    _charset(args[1])
    return _criteria(args[0]), args[2:]


def parse_thread(args: list[Token]) -> tuple[str, list[Token]]:
    if len(args) < 3 or not isinstance(args[0], Atom):
        raise ParseError("THREAD needs an algorithm, a charset and search keys")
    algorithm = args[0].upper()
    if algorithm not in THREAD_ALGORITHMS:
        raise ParseError(f"Unknown threading algorithm {algorithm}")
    _charset(args[1])
    return algorithm, args[2:]


def _key_for(name: str) -> Callable[[Row], Any]:
    return lambda row: _key(row, name)


def _key(row: Row, name: str) -> object:
    if name == "ARRIVAL":
        return row.internal_date
    if name == "DATE":
        return row.date
    if name == "SIZE":
        return row.size
    if name == "SUBJECT":
        return base_subject(row.subject)
    if name == "FROM":
        return row.from_mailbox.casefold()
    if name == "TO":
        return row.to_mailbox.casefold()
    return row.cc_mailbox.casefold()


def sort(rows: Iterable[Row], criteria: Sequence[tuple[str, bool]]) -> list[int]:
    """UIDs ordered by the criteria, ties by UID (the sequence order)."""
    ordered = sorted(rows, key=lambda r: r.uid)
    # Stable sorts from the last criterion to the first give the combined order.
    for name, reverse in reversed(criteria):
        ordered.sort(key=_key_for(name), reverse=reverse)
    return [r.uid for r in ordered]


@dataclass
class Node:
    uid: int | None  # None for a message referred to but not in the set (a "dummy")
    date: datetime.datetime | None = None
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None

    def first_date(self) -> datetime.datetime:
        """The date a node sorts by: its own, or for a dummy its first child's (RFC 5256 REFERENCES 4)."""
        if self.date is not None:
            return self.date
        return min((c.first_date() for c in self.children), default=datetime.datetime.max.replace(tzinfo=datetime.UTC))

    def sort_key(self) -> tuple[datetime.datetime, int]:
        node = self
        while node.uid is None and node.children:
            node = node.children[0]
        return self.first_date(), node.uid or 0


def ordered_subject(rows: Iterable[Row]) -> list[Node]:
    """RFC 5256 ORDEREDSUBJECT: messages grouped by base subject, each group sorted by sent date; the first is
    the parent of all the others; threads ordered by their first message's date."""
    groups: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda r: (r.date, r.uid)):
        groups.setdefault(base_subject(row.subject), []).append(row)
    threads = []
    for members in groups.values():
        root = Node(members[0].uid, members[0].date)
        root.children = [Node(m.uid, m.date, parent=root) for m in members[1:]]
        threads.append(root)
    return threads


def _would_loop(parent: Node, child: Node) -> bool:
    node: Node | None = parent
    while node is not None:
        if node is child:
            return True
        node = node.parent
    return False


def _link(parent: Node, child: Node) -> None:
    if child.parent is parent or _would_loop(parent, child):
        return
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def references(rows: Iterable[Row]) -> list[Node]:
    """RFC 5256 REFERENCES (after JWZ): parents from References/In-Reply-To, dummies pruned, roots with the
    same base subject gathered, siblings and threads ordered by date."""
    rows = sorted(rows, key=lambda r: r.uid)
    table: dict[str, Node] = {}
    nodes: list[tuple[Row, Node]] = []
    for row in rows:
        # Step 1A: a message without a Message-ID, or with one already seen, gets a unique one.
        key = row.message_id if row.message_id and row.message_id not in table else f"uid:{row.uid}"
        node = table.get(key)
        if node is None or node.uid is not None:
            node = table[key] = Node(None)
        node.uid, node.date = row.uid, row.date
        nodes.append((row, node))
    for row, node in nodes:
        # Step 1B: link the references in order, each the parent of the next, without breaking links made.
        previous: Node | None = None
        for ref in row.references:
            container = table.setdefault(ref, Node(None))
            if previous is not None and container.parent is None:
                _link(previous, container)
            previous = container
        # Step 1C: the last reference is the message's parent (replacing any earlier guess).
        if previous is not None and previous is not node:
            _link(previous, node)
        elif row.references == () and node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
    roots = [n for n in table.values() if n.parent is None]
    roots = _prune(roots)
    roots = _gather_by_subject(roots, {node.uid: row for row, node in nodes})
    _sort_children(roots)
    roots.sort(key=Node.sort_key)
    return roots


def _prune(roots: list[Node]) -> list[Node]:
    """Step 4: drop dummies without children; replace a dummy by its children, except at the root where
    only a dummy with a single child is replaced. Iterative: a reply chain may be thousands deep."""
    order: list[Node] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):  # every node after its descendants
        kept: list[Node] = []
        for child in node.children:
            if child.uid is None:
                for grandchild in child.children:
                    grandchild.parent = node
                kept.extend(child.children)
            else:
                kept.append(child)
        node.children = kept
    out: list[Node] = []
    for root in roots:
        if root.uid is None and len(root.children) <= 1:
            for child in root.children:
                child.parent = None
            out.extend(root.children)
        else:
            out.append(root)
    return out


def _subject_of(node: Node, rows: dict[int | None, Row]) -> tuple[str, bool]:
    """The base subject of a thread (a dummy's first child's) and whether it was a reply or forward."""
    probe = node if node.uid is not None else min(node.children, key=Node.sort_key)
    subject = rows[probe.uid].subject
    base = base_subject(subject)
    return base, subject.casefold().strip() != base


def _gather_by_subject(roots: list[Node], rows: dict[int | None, Row]) -> list[Node]:
    """Step 5: roots whose threads share a base subject become one thread."""
    info = {id(root): _subject_of(root, rows) for root in roots}  # (base subject, is a reply or forward)
    table: dict[str, Node] = {}
    for root in roots:
        subject, is_reply = info[id(root)]
        if not subject:
            continue
        current = table.get(subject)
        if (
            current is None
            or (current.uid is not None and root.uid is None)
            or (current.uid is not None and root.uid is not None and info[id(current)][1] and not is_reply)
        ):
            table[subject] = root
    position = {id(root): index for index, root in enumerate(roots)}
    result: list[Node | None] = list(roots)
    for root in roots:
        subject, is_reply = info[id(root)]
        keeper = table.get(subject) if subject else None
        if keeper is None or keeper is root:
            continue
        result[position[id(root)]] = None
        if keeper.uid is None and root.uid is None:
            for child in root.children:
                child.parent = keeper
            keeper.children.extend(root.children)
        elif keeper.uid is None or (is_reply and not info[id(keeper)][1]):
            root.parent = keeper
            keeper.children.append(root)
        else:
            # Both real messages, and not one reply to the other's subject: a new dummy holds them both.
            dummy = Node(None)
            for member in (keeper, root):
                member.parent = dummy
                dummy.children.append(member)
            result[position[id(keeper)]] = table[subject] = dummy
            position[id(dummy)] = position[id(keeper)]
            info[id(dummy)] = (subject, False)
    return [root for root in result if root is not None]


def _sort_children(siblings: list[Node]) -> None:
    stack = list(siblings)
    while stack:
        node = stack.pop()
        node.children.sort(key=Node.sort_key)
        stack.extend(node.children)


def render_threads(threads: Sequence[Node], number: dict[int, int] | None = None) -> bytes:
    """RFC 5256 4: "(3 6 (4 23)(44 7 96))": a message with one child continues its list, several children
    are nested lists. `number` maps UIDs to sequence numbers (None: the UIDs themselves). Iterative, like
    the rest, whatever the depth of a thread."""
    out: list[str] = []
    # A stack of work: text to write, or a node that starts a list.
    stack: list[str | Node] = []
    for thread in reversed(threads):
        stack += [")", thread, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, first = item, True
        while True:
            if node.uid is not None:
                out.append(("" if first else " ") + str(node.uid if number is None else number[node.uid]))
                first = False
            if len(node.children) != 1:
                break
            node = node.children[0]
        work: list[str | Node] = []
        for index, child in enumerate(node.children):
            work += [("" if first or index else " ") + "(", child, ")"]
        stack.extend(reversed(work))
    return "".join(out).encode()
