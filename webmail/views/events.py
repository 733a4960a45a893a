"""Live updates: a server-sent event stream of the account's changed folders.

It listens to the same change notifications as IMAP IDLE (`mailboxes.changes`), in the web server's event loop,
so an open list learns of new mail within a moment of the delivery's commit and fetches its fresh fragment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from mailboxes import changes

KEEPALIVE_SECONDS = 20  # a comment line this often keeps proxies from closing an idle stream
COALESCE_SECONDS = 0.2  # changes arriving together (a delivery to several folders) become one event


async def _stream(account_id: int) -> AsyncIterator[str]:
    async with changes.hub().subscribe(account_id) as queue:
        yield "retry: 2000\n\n"
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            changed = {first}
            await asyncio.sleep(COALESCE_SECONDS)
            while not queue.empty():
                changed.add(queue.get_nowait())
            yield f"event: change\ndata: {','.join(str(pk) for pk in sorted(changed))}\n\n"


def _close_connection() -> None:
    connection.close()  # looked up here, in the thread that owns the connection


async def events(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    user = await request.auser()
    # The session lookup opened a database connection in this request's thread; the stream may stay open for
    # hours and never needs it again, so it is closed now rather than when the stream ends.
    await sync_to_async(_close_connection)()
    if not user.is_authenticated:
        return HttpResponse("Signed out", status=401)
    response = StreamingHttpResponse(_stream(user.pk), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return response
