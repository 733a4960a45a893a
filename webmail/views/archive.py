"""Download the whole account as a zip of mbox files (the format `manage.py importmail` reads back)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from mailboxes.models import Mailbox, Message
from transfer.archive import mbox_zip
from webmail.views.common import account, account_required


async def _in_database_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each piece made in Django's one thread for sync code, where the generator's database cursor lives."""
    step = sync_to_async(_next, thread_sensitive=True)
    while (chunk := await step(chunks)) is not None:
        yield chunk


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


@account_required  # type: ignore[arg-type]  # it passes any response through; its hint names HttpResponse only
@require_GET
def archive(request: HttpRequest) -> HttpResponseBase:
    me = account(request)
    if request.GET.get("download") != "mbox":
        folders = Mailbox.objects.filter(account=me).count()
        messages = Message.objects.filter(account=me).count()
        return render(
            request,
            "webmail/archive.html",
            {"folders": folders, "messages": messages, "used_bytes": me.used_bytes},
        )
    chunks = mbox_zip(me)
    # Under ASGI the pieces are handed over as they are made; a sync iterator there would be read whole first.
    content = _in_database_thread(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="application/zip")
    name = f"{me.address} {timezone.now():%Y-%m-%d}.zip"
    response["Content-Disposition"] = content_disposition_header(True, name) or "attachment"
    response["Cache-Control"] = "private, no-store"
    return response
