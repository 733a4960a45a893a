"""Argument checks shared by handlers."""

from __future__ import annotations

from imapd import mutf7
from imapd.protocol import Command, ParseError, Token, astring
from mailboxes import actions


def count(command: Command, *allowed: int) -> list[Token]:
    if len(command.args) not in allowed:
        raise ParseError(f"Wrong number of arguments for {command.name}")
    return command.args


def mailbox(token: Token, utf8: bool = False) -> str:
    """A mailbox argument as a stored folder name: decoded (`supplied_name`), then validated and normalised."""
    return actions.normalise_folder_name(supplied_name(token, utf8))


def supplied_name(token: Token, utf8: bool = False) -> str:
    """A mailbox argument as the client wrote it: modified UTF-7 decoded (RFC 3501 5.1.3), or taken as UTF-8
    once IMAP4rev2 is enabled (RFC 9051 5.1: "&" is then an ordinary character)."""
    if utf8:
        return astring(token)
    try:
        return mutf7.decode(astring(token))
    except mutf7.MUTF7Error as exc:
        raise ParseError(f"Invalid mailbox name: {exc}") from None


def wire_name(name: str, utf8: bool = False) -> str:
    """A folder name as sent: modified UTF-7, or UTF-8 once IMAP4rev2 is enabled."""
    return name if utf8 else mutf7.encode(name)
