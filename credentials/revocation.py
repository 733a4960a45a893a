"""Ending a session when the app password it signed in with is revoked, for listeners without IDLE.

`credentials.actions.revoke_app_password` announces the revocation on the change hub (`mailboxes.changes`); a
session that signed in with an app password watches its account there while it runs and is ended at once.
The IMAP session reads the same note from the subscription it has anyway (`imapd/session.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from credentials.actions import revocation_note
from mailboxes import changes


@contextlib.asynccontextmanager
async def ends_session(account_id: int, app_password_id: int | None, end: Callable[[], None]) -> AsyncIterator[None]:
    """While the block runs, call `end` if the app password is revoked (nothing to watch for a main password)."""
    if app_password_id is None:
        yield
        return
    note = revocation_note(app_password_id)
    async with changes.hub().subscribe(account_id) as queue:

        async def watch() -> None:
            while await queue.get() != note:
                pass
            end()

        task = asyncio.get_running_loop().create_task(watch(), name="mailsite-revocation-watch")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
