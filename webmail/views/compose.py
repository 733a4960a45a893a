"""Writing mail: new messages, replies, forwards and drafts; sending through the store's actions."""

from __future__ import annotations

import html

from django.conf import settings
from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from mailboxes import actions
from mailboxes.models import Message, Role
from mailcore.mime import Envelope, html_to_text
from mailcore.subject import base_subject
from webmail import address_book, compose, drafts, queries, scheduling
from webmail.addresses import flatten, format_address
from webmail.forms import ComposeForm
from webmail.models import ScheduledSend
from webmail.views.common import account, account_required


def _kept_from_post(request: HttpRequest) -> list[drafts.Kept]:
    """The carried-over attachments still ticked, checked against the account's own messages."""
    wanted: dict[int, set[int]] = {}
    for key in request.POST.getlist("keep"):
        message_id, _, index = key.partition(":")
        if message_id.isdigit() and index.isdigit():
            wanted.setdefault(int(message_id), set()).add(int(index))
    kept: list[drafts.Kept] = []
    for source in Message.objects.filter(account=account(request), pk__in=wanted):
        kept.extend(k for k in drafts.kept_of(source) if k.index in wanted[source.pk])
    return kept


def _reply_address(message: Message) -> tuple[str, str]:
    envelope = Envelope.from_json(message.envelope)
    for name, address in drafts.addresses(envelope.reply_to):
        return name, address
    return message.from_name, message.from_address


def _prefixed(prefix: str, subject: str) -> str:
    subject = flatten(subject)
    if base_subject(subject) != subject.casefold() and subject.lower().startswith(prefix.lower()):
        return subject
    return f"{prefix} {subject}".strip()


def _initial(request: HttpRequest) -> tuple[dict, list[drafts.Kept], Message | None]:
    """Form values for a reply, reply-all, forward, resumed draft or mailto-style ?to=."""
    me = account(request)
    initial: dict = {"to": flatten(request.GET.get("to", ""))}
    for mode in ("reply", "replyall", "forward", "draft"):
        value = request.GET.get(mode, "")
        if not value.isdigit():
            continue
        original = Message.objects.filter(account=me, pk=int(value)).select_related("body").first()
        if original is None:
            continue
        when = timezone.localtime(original.sent_date or original.internal_date).strftime("%a, %d %b %Y %H:%M")
        sender = format_address(original.from_name, original.from_address) if original.from_address else "someone"
        if mode == "draft":
            return drafts.fields(original), drafts.kept_of(original), original
        if mode == "forward":
            header = (
                "\n\n---------- Forwarded message ----------\n"
                f"From: {sender}\nDate: {when}\nSubject: {flatten(original.subject)}\n"
                f"To: {flatten(original.to_addresses)}\n\n"
            )
            initial.update(
                subject=_prefixed("Fwd:", original.subject),
                body=header + drafts.quoted_text(original),
                body_html=drafts.text_html(header.rstrip("\n")) + f"<div>{drafts.quoted_html(original)}</div>",
            )
            return initial, drafts.kept_of(original), original
        name, address = _reply_address(original)
        initial["to"] = format_address(name, address)
        if mode == "replyall":
            envelope = Envelope.from_json(original.envelope)
            others = [
                format_address(n, a)
                for n, a in drafts.addresses([*envelope.to, *envelope.cc])
                if a.lower() not in (me.address.lower(), address.lower())
            ]
            initial["cc"] = ", ".join(dict.fromkeys(others))
        quoted = "\n".join(f"> {line}" if line else ">" for line in drafts.quoted_text(original).splitlines())
        initial.update(
            subject=_prefixed("Re:", original.subject),
            body=f"\n\nOn {when}, {sender} wrote:\n{quoted}\n",
            body_html=(
                f"<div><br></div><div><br></div><div>{html.escape(f'On {when}, {sender} wrote:')}</div>"
                f'<blockquote type="cite">{drafts.quoted_html(original)}</blockquote>'
            ),
            in_reply_to=original.message_id if compose.message_ids([original.message_id]) else "",
            references=" ".join(compose.reply_references(original)),
            replying=original.pk,
        )
        return initial, [], original
    return initial, [], None


def _signed(body: str, signature: str) -> str:
    """The user's signature below where they type and above any quoted text, after the "-- " line that mail
    clients recognise as the start of a signature (RFC 3676 4.3)."""
    if not signature.strip():
        return body
    rest = body.lstrip("\n")
    return f"\n\n-- \n{signature.rstrip()}\n" + (f"\n{rest}" if rest else "")


def _signed_html(body_html: str, signature: str, signature_html: str) -> str:
    """The editor's starting HTML: room to type, the "-- " line and the signature (HTML if the user has one),
    then the quoted message if any."""
    signed = signature_html or drafts.text_html(signature.rstrip())
    return f"<div><br></div><div><br></div><div>--&nbsp;</div>{signed}{body_html}"


def _own(request: HttpRequest, pk: int | None, role: Role | None = None) -> Message | None:
    if pk is None:
        return None
    found = Message.objects.filter(account=account(request), pk=pk)
    if role is not None:
        found = found.filter(mailbox__role=role)
    return found.first()


def _problems(form: ComposeForm) -> list[str]:
    """Every error of the form as one line a person reads ("To: ...")."""
    lines: list[str] = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        lines.extend(f"{label}: {error}" if label else str(error) for error in errors)
    return lines


def _schedule(
    request: HttpRequest, form: ComposeForm, outgoing: compose.Outgoing, previous: Message | None
) -> HttpResponse | None:
    """ "Send later": the message is kept in Drafts and sent at the chosen time (None: the form shows why not)."""
    when = form.cleaned_data["send_at"]
    problem = scheduling.problem_with(when)
    if problem:
        form.add_error("send_at", problem)
        return None
    try:
        scheduling.schedule(outgoing, when, previous=previous, answers=_own(request, form.cleaned_data["replying"]))
    except actions.ServiceError as exc:
        form.add_error(None, f"The message was not scheduled: {exc}")
        return None
    shown = date_format(timezone.localtime(when), "D j M Y, H:i")
    return _done(request, reverse("webmail:scheduled"), f"The message will be sent on {shown}.")


def _done(request: HttpRequest, location: str, notice: str) -> HttpResponse:
    """Sent or saved: the next page, or for the page's own script (which keeps the form while it waits, see
    webmail.js) where to go next."""
    notices.success(request, notice)
    if request.headers.get("X-Requested-With") == "fetch":
        return JsonResponse({"location": location})
    return redirect(location)


@account_required
def compose_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        initial, kept, _ = _initial(request)
        if not initial.get("draft"):  # a resumed draft has its signature already
            chosen = request.preferences  # type: ignore[attr-defined]
            signature = chosen.signature or (html_to_text(chosen.signature_html) if chosen.signature_html else "")
            initial["body"] = _signed(initial.get("body", ""), signature)
            if chosen.signature_html or (initial.get("body_html") and signature.strip()):
                initial["body_html"] = _signed_html(initial.get("body_html", ""), signature, chosen.signature_html)
        form = ComposeForm(initial=initial)
        return render(request, "webmail/compose.html", _page(request, form, kept))
    action = request.POST.get("action", "send")
    form = ComposeForm(request.POST, request.FILES, sending=action in ("send", "schedule"))
    kept = _kept_from_post(request)
    if form.is_valid():
        data = form.cleaned_data
        outgoing = drafts.outgoing(account(request), data, drafts.attachment_data(kept, data["attachments"]))
        previous = _own(request, data["draft"], Role.DRAFTS)
        too_big = compose.too_big(outgoing)
        if too_big:
            form.add_error(None, too_big)
        elif action == "send":
            try:
                compose.send(outgoing, replying_to=_own(request, data["replying"]), draft=previous)
            except actions.NotSent as exc:
                form.add_error(None, f"The message was not sent to anyone. {compose.refusals(exc.refused)}.")
            except actions.ServiceError as exc:
                form.add_error(None, f"The message was not sent: {exc}")
            else:
                address_book.remember_recipients(account(request), [*outgoing.to, *outgoing.cc, *outgoing.bcc])
                return _done(request, reverse("webmail:home"), "Message sent.")
        elif action == "schedule":
            response = _schedule(request, form, outgoing, previous)
            if response is not None:
                return response
        else:
            try:
                draft = compose.save_draft(outgoing, previous=previous)
            except actions.ServiceError as exc:
                form.add_error(None, f"The draft was not saved: {exc}")
            else:
                if action == "autosave":
                    return JsonResponse(
                        {
                            "draft": draft.pk,
                            "kept": [k.key for k in drafts.kept_of(draft)],
                            "saved": timezone.now().isoformat(),
                        }
                    )
                return _done(request, f"{request.path}?draft={draft.pk}", "Draft saved.")
    if action == "autosave" or request.headers.get("X-Requested-With") == "fetch":
        return JsonResponse({"errors": form.errors.get_json_data(), "problems": _problems(form)}, status=400)
    return render(request, "webmail/compose.html", _page(request, form, kept), status=400)


def _page(request: HttpRequest, form: ComposeForm, kept: list[drafts.Kept]) -> dict:
    draft = form["draft"].value()
    return {
        "form": form,
        # A scheduled draft opened here: the page says when it goes, and that changing it cancels that.
        "scheduled": ScheduledSend.objects.filter(account=account(request), message_id=draft).first()
        if str(draft or "").isdigit()
        else None,
        "time_zone": timezone.get_current_timezone_name(),
        "kept": kept,
        "kept_keys": [k.key for k in kept],
        "max_size": settings.MAILSITE_MAX_MESSAGE_SIZE,
        "undo_send_seconds": request.preferences.undo_send_seconds,  # type: ignore[attr-defined]
    }


@account_required
def contacts(request: HttpRequest) -> JsonResponse:
    """Suggestions for an address field: people the user has received mail from or written to."""
    return JsonResponse({"results": queries.contacts(account(request), request.GET.get("q", "")[:100])})
