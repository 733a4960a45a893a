"""Command handlers, one per command, and the table keyed by state and command name.

A handler gets the session and the parsed command, writes untagged responses with `session.send`, and returns
the text of the tagged OK (or raises `No` / `ParseError` for NO / BAD). Which commands a state admits is decided
by `imapd.protocol.COMMANDS_BY_STATE` (RFC 3501 6); the table below maps each of those names to its handler.
"""

from __future__ import annotations

from imapd.commands import any_state, folders, messages, not_authenticated, quota, searching
from imapd.protocol import COMMANDS_BY_STATE, State
from imapd.session import Handler

HANDLERS: dict[str, Handler] = {
    **any_state.HANDLERS,
    **not_authenticated.HANDLERS,
    **folders.HANDLERS,
    **messages.HANDLERS,
    **searching.HANDLERS,
    **quota.HANDLERS,
}

TABLE: dict[State, dict[str, Handler]] = {
    state: {name: HANDLERS[name] for name in names} for state, names in COMMANDS_BY_STATE.items()
}
