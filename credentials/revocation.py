"""Ending a session when the app password it signed in with is revoked, in whichever process it runs.

`credentials.actions.revoke_app_password` announces the revocation on the change hub (`mailboxes.changes`) in its
transaction. A session signed in with an app password watches its account on the hub while it runs. The hub
hears nothing while it is not listening (the first subscriber of a process, a lost database connection), and
says "anything may have changed" once it listens again; the watch then asks the database whether the app
password still exists, so a revocation in that gap ends the session too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from django.db import DatabaseError

from credentials.actions import revocation_note
from credentials.models import AppPassword
from mailboxes import asyncdb, changes


def _exists(app_password_id: int) -> bool:
    return AppPassword.objects.filter(pk=app_password_id).exists()


@contextlib.asynccontextmanager
async def ends_session(account_id: int, app_password_id: int | None, end: Callable[[], None]) -> AsyncIterator[None]:
    """While the block runs, call `end` if the app password is revoked (nothing to watch for a main password)."""
    if app_password_id is None:
        yield
        return
    note = revocation_note(app_password_id)
    async with changes.hub().subscribe(account_id) as queue:

        async def watch() -> None:
            while True:
                heard = await queue.get()
                if heard == note:
                    break
                if heard == changes.ANYWHERE:
                    try:
                        if not await asyncdb.call(_exists, app_password_id):
                            break
                    except DatabaseError:
                        pass  # the hub says ANYWHERE again once it has the database back
            end()

        task = asyncio.get_running_loop().create_task(watch(), name="mailsite-revocation-watch")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
