"""Attachments: one file, shown in the browser's own viewer (images and PDF only), or all of them as a zip."""

from __future__ import annotations

import io
import re
import zipfile

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import content_disposition_header

from mailcore.mime import decode_body
from webmail.reading import Reading
from webmail.views.common import account_required, message_of

_SAFE_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


@account_required
def attachment(request: HttpRequest, message_id: int, index: int) -> HttpResponse:
    """One attachment as a download, or with `?view=1` (images and PDF) in the browser's own viewer."""
    shown = message_of(request, message_id)
    reading = Reading(shown)
    found = next((a for a in reading.attachments if a.index == index), None)
    part = reading.part(index)
    if found is None or part is None:
        raise Http404("No such attachment")
    data = decode_body(bytes(shown.body.raw), part)
    content_type = found.content_type if _SAFE_TYPE.match(found.content_type) else "application/octet-stream"
    inline = request.GET.get("view") == "1" and found.previewable
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(not inline, found.filename) or "attachment"
    # PDF needs the browser's viewer, which a sandboxed response may not load.
    if content_type == "application/pdf" and inline:
        response["Content-Security-Policy"] = "default-src 'none'; object-src 'self'; frame-ancestors 'none'"
    else:
        response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"  # the declared type only: an "image" that is HTML stays inert
    response["Cache-Control"] = "private, no-store"
    return response


def _unique(name: str, taken: set[str]) -> str:
    """A file name safe in a zip (no directories or control characters), numbered when it repeats."""
    name = _UNSAFE_IN_NAME.sub("_", name).strip(" .") or "file"
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n}).{extension}" if extension else f"{stem} ({n})"
    taken.add(candidate.casefold())
    return candidate


@account_required
def all_attachments(request: HttpRequest, message_id: int) -> HttpResponse:
    """Every attachment of the message in one zip file."""
    shown = message_of(request, message_id)
    reading = Reading(shown)
    if not reading.attachments:
        raise Http404("No attachments")
    raw = bytes(shown.body.raw)
    buffer = io.BytesIO()
    taken: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in reading.attachments:
            part = reading.part(item.index)
            assert part is not None
            archive.writestr(_unique(item.filename, taken), decode_body(raw, part))
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    subject = _UNSAFE_IN_NAME.sub("_", shown.subject).strip(" .")[:60] or "message"
    response["Content-Disposition"] = content_disposition_header(True, f"{subject} attachments.zip") or "attachment"
    response["Cache-Control"] = "private, no-store"
    return response
