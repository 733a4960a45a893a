"""LIST/LSUB mailbox patterns (RFC 3501 6.3.8) matched in time linear in the name, without regular expressions.

"*" matches any run of characters, "%" any run without the hierarchy delimiter. A pattern is compiled to
the states of a small automaton (runs of wildcards collapse to one: a run holding "*" is "*", a run of "%"
is "%"), and a name is matched by advancing the set of live states, held as the bits of one integer, one
character at a time. No input can make it backtrack: a name of n characters costs n steps, each a few
operations on integers as wide as the pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

from imapd.protocol import ParseError

DELIMITER = "/"
# Folder names are at most 512 characters (a few times that in modified UTF-7); a longer pattern is refused
# before any work is done on it, so no literal of any size costs the event loop more than a moment.
MAX_PATTERN = 16 * 1024


@dataclass(frozen=True)
class Pattern:
    literals: dict[str, int]  # character -> bits of the states that consume it
    star: int  # bits of "*" states
    percent: int  # bits of "%" states
    accept: int  # the bit of the final state
    min_length: int  # characters a name needs at least (the literal ones)

    def matches(self, name: str) -> bool:
        if len(name) < self.min_length:
            return False
        wild = self.star | self.percent
        states = 1
        states |= (states & wild) << 1  # a wildcard may match nothing
        for ch in name:
            moved = (states & self.literals.get(ch, 0)) << 1
            stay = states & (self.star if ch == DELIMITER else wild)
            states = moved | stay
            if not states:
                return False
            states |= (states & wild) << 1
        return bool(states & self.accept)


def compile_pattern(reference: str, pattern: str) -> Pattern:
    """The pattern of LIST reference pattern: the two joined (a pattern starting with the delimiter stands
    alone), with INBOX matched in any case (RFC 3501 5.1)."""
    if len(pattern) + len(reference) > MAX_PATTERN:
        raise ParseError(f"LIST pattern too long (the limit is {MAX_PATTERN} characters)")
    full = pattern if pattern.startswith(DELIMITER) else reference + pattern
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        full = "INBOX" + full[5:]
    tokens: list[str] = []
    for ch in full:
        if ch in "*%" and tokens and tokens[-1] in "*%":
            if ch == "*":
                tokens[-1] = "*"
            continue
        tokens.append(ch)
    literals: dict[str, int] = {}
    star = percent = 0
    for index, token in enumerate(tokens):
        bit = 1 << index
        if token == "*":
            star |= bit
        elif token == "%":
            percent |= bit
        else:
            literals[token] = literals.get(token, 0) | bit
    min_length = sum(1 for t in tokens if t not in "*%")
    return Pattern(literals, star, percent, 1 << len(tokens), min_length)
