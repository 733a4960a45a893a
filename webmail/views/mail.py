"""Reading mail: the three-pane page, list fragments, the reading pane, the mail frame and attachments."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qsl, urlsplit

from django.contrib import messages as notices
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from mailboxes import actions
from mailboxes.models import Mailbox, Message, Role
from mailcore.mime import part_text
from webmail import delivery, queries, sanitize
from webmail.reading import Reading
from webmail.search_terms import parse as parse_terms
from webmail.templatetags.webmail import UNDO_KEY
from webmail.views.common import (
    account,
    account_required,
    folder_of,
    message_of,
    page_number,
    page_size,
    role_folder,
)


@account_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("webmail:folder", folder_id=role_folder(request, Role.INBOX).pk)


def _list_context(request: HttpRequest, folder: Mailbox | None) -> dict:
    """The folder pane and message list for a folder (or for a search, everywhere or within the folder)."""
    query = request.GET.get("q", "").strip()[:500]
    threads = request.GET.get("view") == "threads" and not query
    number = page_number(request)
    size = page_size(request)
    if query:
        within = folder if request.GET.get("in") != "all" else None
        page = queries.search(account(request), query, within, number, size)
    elif threads:
        assert folder is not None
        page = queries.conversation_page(folder, number, size)
    else:
        assert folder is not None
        page = queries.message_page(folder, number, size)
    all_folders = queries.folders(account(request))
    params = {
        k: v for k, v in (("q", query), ("in", request.GET.get("in", "")), ("view", "threads" if threads else "")) if v
    }
    return {
        "folder": folder,
        "page_url": _without_fragment(request.path, request.GET.urlencode()),
        "folders": all_folders,
        # The tab's title starts with the Inbox's unread count, as mail clients' do.
        "inbox_unread": next((getattr(f, "unread", 0) for f in all_folders if f.role == Role.INBOX), 0),
        "page": page,
        "query": query,
        "search_problems": parse_terms(query).problems if query else [],
        "search_all": request.GET.get("in") == "all",
        "threads": threads,
        "list_params": urlencode(params),
        "move_targets": [f for f in all_folders if folder is None or f.pk != folder.pk],
    }


def _without_fragment(path: str, query: str) -> str:
    """The full page's address for a list fragment's: live refreshes fetch `?...&fragment=list`, and forms in
    the refreshed list must send the user back to the page, never to the bare fragment."""
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "fragment"]
    return f"{path}?{urlencode(params)}" if params else path


@account_required
def folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    current = folder_of(request, folder_id)
    context = _list_context(request, current)
    if request.GET.get("fragment") == "list":
        return render(request, "webmail/_list.html", context)
    if request.GET.get("fragment") == "folders":
        return render(request, "webmail/_folders.html", context)
    return render(request, "webmail/mailbox.html", context)


def _reading_context(request: HttpRequest, message: Message) -> dict:
    reading = Reading(message)
    raw = None
    texts = []
    for body in reading.bodies:
        if not body.is_html:
            raw = raw if raw is not None else message.body.raw
            part = reading.part(body.index)
            assert part is not None
            texts.append((body, sanitize.linkify(part_text(bytes(raw), part))))
        else:
            texts.append((body, ""))
    return {
        "message": message,
        "delivery": delivery.recipients(message) if message.mailbox.role == Role.SENT else [],
        "reading": reading,
        "bodies": texts,
        "sandbox": sanitize.FRAME_SANDBOX,
        "show_images": request.GET.get("images") == "1",
    }


@account_required
def message(request: HttpRequest, message_id: int) -> HttpResponse:
    """The reading pane; opening a message marks it read, as every mail client does."""
    shown = message_of(request, message_id)
    if not shown.seen:
        actions.set_flags(account(request), shown.mailbox_id, [shown.uid], ["\\Seen"], actions.FlagMode.ADD)
        shown.seen = True
    context = _reading_context(request, shown)
    if request.GET.get("fragment") == "1":
        return render(request, "webmail/_message.html", context)
    context.update(_list_context(request, shown.mailbox))
    return render(request, "webmail/mailbox.html", context)


@account_required
def frame(request: HttpRequest, message_id: int, index: int) -> HttpResponse:
    """A sanitised HTML body as its own document, for the sandboxed frame of the reading pane."""
    shown = message_of(request, message_id)
    reading = Reading(shown)
    part = reading.part(index)
    if part is None or part.content_type != "text/html":
        raise Http404("No such part")
    raw = bytes(shown.body.raw)
    show_images = request.GET.get("images") == "1"
    cleaned = sanitize.clean(part_text(raw, part), show_images=show_images, inline=lambda cid: reading.inline(raw, cid))
    document = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font-family:system-ui,sans-serif;margin:12px;overflow-wrap:anywhere;color:#111;"
        "background:#fff}img{max-width:100%;height:auto}table{max-width:100%}</style>"
        f"</head><body>{cleaned.html}</body></html>"
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = sanitize.frame_policy(show_images)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Blocked-Images"] = str(cleaned.blocked_images)
    response["Cache-Control"] = "private, no-store"
    return response


@account_required
def source(request: HttpRequest, message_id: int) -> HttpResponse:
    """The message exactly as stored, as plain text (never rendered: nosniff and a sandbox)."""
    shown = message_of(request, message_id)
    response = HttpResponse(bytes(shown.body.raw), content_type="text/plain; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@account_required
def delivery_status(request: HttpRequest, message_id: int) -> HttpResponse:
    """The delivery block of a sent message, which the reading pane fetches again while any is under way."""
    shown = message_of(request, message_id)
    return render(request, "webmail/_delivery.html", {"message": shown, "delivery": delivery.recipients(shown)})


@account_required
def print_view(request: HttpRequest, message_id: int) -> HttpResponse:
    """One message on a plain page for printing: headers, bodies and the names of its attachments."""
    return render(request, "webmail/print.html", _reading_context(request, message_of(request, message_id)))


def _thread_folder(request: HttpRequest, found: list[Message]) -> Mailbox:
    """The folder whose list stays beside a conversation: the one it was opened from (`?folder=`), else that
    of its newest message outside Trash and Junk, so opening a thread never switches the screen to Trash."""
    wanted = request.GET.get("folder", "")
    if wanted.isdigit():
        for message in found:
            if message.mailbox_id == int(wanted):
                return message.mailbox
        return folder_of(request, int(wanted))
    kept = [m for m in found if m.mailbox.role not in (Role.TRASH, Role.JUNK)]
    return (kept or found)[-1].mailbox


@account_required
def thread(request: HttpRequest, thread_id: uuid.UUID) -> HttpResponse:
    """A whole conversation across folders, the user's replies in Sent included."""
    found = queries.thread_messages(account(request), thread_id)
    if not found:
        raise Http404("No such conversation")
    unread = [m for m in found if not m.seen]
    for mailbox_id in {m.mailbox_id for m in unread}:
        uids = [m.uid for m in unread if m.mailbox_id == mailbox_id]
        actions.set_flags(account(request), mailbox_id, uids, ["\\Seen"], actions.FlagMode.ADD)
    for m in unread:
        m.seen = True
    items = [_reading_context(request, m) for m in found]
    context = _list_context(request, _thread_folder(request, found))
    context.update({"conversation": items, "subject": found[0].subject})
    return render(request, "webmail/thread.html", context)


_FLAG_ACTIONS = {
    "read": (["\\Seen"], actions.FlagMode.ADD),
    "unread": (["\\Seen"], actions.FlagMode.REMOVE),
    "star": (["\\Flagged"], actions.FlagMode.ADD),
    "unstar": (["\\Flagged"], actions.FlagMode.REMOVE),
}


def _back(request: HttpRequest, current: Mailbox) -> str:
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        return _without_fragment(parts.path, parts.query)
    return reverse("webmail:folder", kwargs={"folder_id": current.pk})


def _selected_uids(request: HttpRequest, current: Mailbox) -> list[int]:
    """The ticked messages: single messages by UID, and whole conversations (the conversation view ticks
    threads) as every message of the thread in this folder."""
    uids = {int(uid) for uid in request.POST.getlist("uid")}
    threads = {uuid.UUID(value) for value in request.POST.getlist("thread")}
    if threads:
        uids.update(Message.objects.filter(mailbox=current, thread_id__in=threads).values_list("uid", flat=True))
    return sorted(uids)


def _move(request: HttpRequest, current: Mailbox, uids: list[int], target: Mailbox, notice: str) -> None:
    moved = actions.move(account(request), current.pk, uids, target.pk)
    notices.success(request, notice.format(n=f"{len(moved)} message(s)", f=target.name))
    request.session[UNDO_KEY] = {
        "from": target.pk,
        "to": current.pk,
        "uids": [new for _, new in moved],
        "at": time.time(),
    }


@require_POST
@account_required
def undo(request: HttpRequest) -> HttpResponse:
    """Put back what the last move took away (its new UIDs in the folder it went to)."""
    try:
        source = folder_of(request, int(request.POST.get("from", "")))
        back_to = folder_of(request, int(request.POST.get("to", "")))
        uids = sorted({int(uid) for uid in request.POST.getlist("uid")})
    except ValueError:
        return HttpResponseBadRequest("bad undo")
    try:
        moved = actions.move(account(request), source.pk, uids, back_to.pk)
    except actions.ServiceError as exc:
        notices.error(request, f"Nothing was undone: {exc}")
    else:
        notices.success(request, f"Undone: {len(moved)} message(s) back in {back_to.name}.")
    return redirect(_back(request, back_to))


@require_POST
@account_required
def act(request: HttpRequest, folder_id: int) -> HttpResponse:
    """One action on the selected messages of a folder: flags, move, delete to Trash, delete forever."""
    current = folder_of(request, folder_id)
    me = account(request)
    try:
        uids = _selected_uids(request, current)
    except ValueError:
        return HttpResponseBadRequest("bad message selection")
    action = request.POST.get("action", "")
    back = _back(request, current)
    if not uids:
        notices.error(request, "Select at least one message first.")
        return redirect(back)
    try:
        if action in _FLAG_ACTIONS:
            flags, mode = _FLAG_ACTIONS[action]
            actions.set_flags(me, current.pk, uids, flags, mode)
        elif action == "move":
            _move(request, current, uids, folder_of(request, int(request.POST.get("target") or 0)), "Moved {n} to {f}.")
        elif action == "archive" and current.role != Role.ARCHIVE:
            _move(request, current, uids, role_folder(request, Role.ARCHIVE), "Archived {n}.")
        elif action == "junk" and current.role != Role.JUNK:
            # Moving into Junk is the user's judgement; the store's move trains the junk filter on it.
            _move(request, current, uids, role_folder(request, Role.JUNK), "Reported {n} as junk.")
        elif action == "notjunk" and current.role == Role.JUNK:
            _move(request, current, uids, role_folder(request, Role.INBOX), "Moved {n} to {f}: not junk.")
        elif action == "trash" and current.role != Role.TRASH:
            _move(request, current, uids, role_folder(request, Role.TRASH), "Moved {n} to Trash.")
        elif action in ("trash", "delete") and current.role == Role.TRASH:
            removed = actions.delete_messages(me, current.pk, uids)
            notices.success(request, f"Deleted {len(removed)} message(s) forever.")
        else:
            return HttpResponseBadRequest("unknown action")
    except (ValueError, actions.ServiceError) as exc:
        notices.error(request, f"Nothing was changed: {exc}")
    if request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)  # the star in a row: the page has changed itself already
    if action in ("move", "archive", "junk", "notjunk", "trash", "delete") and back.startswith(("/m/", "/t/")):
        back = reverse("webmail:folder", kwargs={"folder_id": current.pk})
    return redirect(back)


@require_POST
@account_required
def empty_trash(request: HttpRequest) -> HttpResponse:
    trash = role_folder(request, Role.TRASH)
    uids = list(Message.objects.filter(mailbox=trash).values_list("uid", flat=True))
    removed = actions.delete_messages(account(request), trash.pk, uids)
    notices.success(request, f"Trash emptied ({len(removed)} message(s) deleted forever).")
    return redirect("webmail:folder", folder_id=trash.pk)


@account_required
def search(request: HttpRequest) -> HttpResponse:
    """Search everywhere (the folder-scoped search is the folder page with ?q=)."""
    if not request.GET.get("q", "").strip():
        return redirect("webmail:home")
    context = _list_context(request, None)
    if request.GET.get("fragment") == "list":
        return render(request, "webmail/_list.html", context)
    return render(request, "webmail/mailbox.html", context)
