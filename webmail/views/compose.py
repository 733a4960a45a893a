"""Writing mail: new messages, replies, forwards and drafts; sending through the store's actions."""

from __future__ import annotations

import html
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from mailboxes import actions
from mailboxes.models import Message, Role
from mailcore.headers import decode_words
from mailcore.mime import Envelope, EnvelopeAddress, decode_body, html_to_text, part_text
from mailcore.subject import base_subject
from webmail import address_book, compose, queries, sanitize
from webmail.addresses import flatten, format_address
from webmail.forms import ComposeForm
from webmail.reading import Reading
from webmail.templatetags.webmail import filesize
from webmail.views.common import account, account_required

MAX_QUOTED_CHARS = 200_000


@dataclass
class Kept:
    """An attachment carried over from a stored message (forwarded, or already saved in a draft)."""

    message_id: int
    index: int
    filename: str
    size: int

    @property
    def key(self) -> str:
        return f"{self.message_id}:{self.index}"


def _kept_of(message: Message) -> list[Kept]:
    return [Kept(message.pk, a.index, a.filename, a.size) for a in Reading(message).attachments]


def _kept_from_post(request: HttpRequest) -> list[Kept]:
    """The carried-over attachments still ticked, checked against the account's own messages."""
    wanted: dict[int, set[int]] = {}
    for key in request.POST.getlist("keep"):
        message_id, _, index = key.partition(":")
        if message_id.isdigit() and index.isdigit():
            wanted.setdefault(int(message_id), set()).add(int(index))
    kept: list[Kept] = []
    for source in Message.objects.filter(account=account(request), pk__in=wanted):
        kept.extend(k for k in _kept_of(source) if k.index in wanted[source.pk])
    return kept


def _attachment_data(kept: list[Kept], uploads: list) -> list[compose.Attachment]:
    result: list[compose.Attachment] = []
    sources = {m.pk: m for m in Message.objects.filter(pk__in={k.message_id for k in kept}).select_related("body")}
    for item in kept:
        source = sources[item.message_id]
        reading = Reading(source)
        part = reading.part(item.index)
        if part is not None:
            data = decode_body(bytes(source.body.raw), part)
            result.append(compose.Attachment(item.filename, part.content_type, data))
    for upload in uploads:
        result.append(compose.Attachment(upload.name, upload.content_type or "application/octet-stream", upload.read()))
    return result


def _addresses(items: list[EnvelopeAddress]) -> list[tuple[str, str]]:
    """(decoded display name, address) of parsed header addresses; group markers are skipped.

    The structured envelope is used rather than the comma-joined display columns, whose decoded names may
    themselves contain commas, colons or line breaks.
    """
    return [(decode_words(a.name or ""), f"{a.mailbox}@{a.host}") for a in items if a.mailbox and a.host]


def _field(items: list[EnvelopeAddress]) -> str:
    return ", ".join(format_address(name, address) for name, address in _addresses(items))


def _reply_address(message: Message) -> tuple[str, str]:
    envelope = Envelope.from_json(message.envelope)
    for name, address in _addresses(envelope.reply_to):
        return name, address
    return message.from_name, message.from_address


def _prefixed(prefix: str, subject: str) -> str:
    subject = flatten(subject)
    if base_subject(subject) != subject.casefold() and subject.lower().startswith(prefix.lower()):
        return subject
    return f"{prefix} {subject}".strip()


def _quoted_text(message: Message) -> str:
    return Reading(message).text(bytes(message.body.raw))[:MAX_QUOTED_CHARS]


def _text_html(text: str) -> str:
    """Plain text as editor paragraphs."""
    # A trailing space (the "-- " before a signature) as &nbsp;, which editors and HTML keep.
    lines = (
        html.escape(line[:-1]) + "&nbsp;" if line.endswith(" ") else html.escape(line) for line in text.split("\n")
    )
    return "".join(f"<div>{line or '<br>'}</div>" for line in lines)


def _quoted_html(message: Message) -> str:
    """The message's HTML body made safe for the editor (its cid: images as data: URLs), else its text."""
    reading = Reading(message)
    raw = bytes(message.body.raw)
    for body in reading.bodies:
        part = reading.part(body.index)
        if body.is_html and part is not None:
            markup = part_text(raw, part)[:MAX_QUOTED_CHARS]
            return sanitize.clean_outgoing(markup, inline=lambda cid: reading.inline(raw, cid))
    return _text_html(_quoted_text(message))


def _initial(request: HttpRequest) -> tuple[dict, list[Kept], Message | None]:
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
            envelope = Envelope.from_json(original.envelope)
            return (
                {
                    "to": _field(envelope.to),
                    "cc": _field(envelope.cc),
                    "bcc": _field(envelope.bcc),
                    "subject": flatten(original.subject),
                    "body": Reading(original).text(bytes(original.body.raw)),
                    "body_html": _quoted_html(original) if any(b.is_html for b in Reading(original).bodies) else "",
                    "in_reply_to": original.in_reply_to,
                    "references": original.references,
                    "draft": original.pk,
                },
                _kept_of(original),
                original,
            )
        if mode == "forward":
            header = (
                "\n\n---------- Forwarded message ----------\n"
                f"From: {sender}\nDate: {when}\nSubject: {flatten(original.subject)}\n"
                f"To: {flatten(original.to_addresses)}\n\n"
            )
            initial.update(
                subject=_prefixed("Fwd:", original.subject),
                body=header + _quoted_text(original),
                body_html=_text_html(header.rstrip("\n")) + f"<div>{_quoted_html(original)}</div>",
            )
            return initial, _kept_of(original), original
        name, address = _reply_address(original)
        initial["to"] = format_address(name, address)
        if mode == "replyall":
            envelope = Envelope.from_json(original.envelope)
            others = [
                format_address(n, a)
                for n, a in _addresses([*envelope.to, *envelope.cc])
                if a.lower() not in (me.address.lower(), address.lower())
            ]
            initial["cc"] = ", ".join(dict.fromkeys(others))
        quoted = "\n".join(f"> {line}" if line else ">" for line in _quoted_text(original).splitlines())
        initial.update(
            subject=_prefixed("Re:", original.subject),
            body=f"\n\nOn {when}, {sender} wrote:\n{quoted}\n",
            body_html=(
                f"<div><br></div><div><br></div><div>{html.escape(f'On {when}, {sender} wrote:')}</div>"
                f'<blockquote type="cite">{_quoted_html(original)}</blockquote>'
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
    signed = signature_html or _text_html(signature.rstrip())
    return f"<div><br></div><div><br></div><div>--&nbsp;</div>{signed}{body_html}"


def _outgoing(request: HttpRequest, form: ComposeForm, kept: list[Kept]) -> compose.Outgoing:
    data = form.cleaned_data
    return compose.Outgoing(
        sender=account(request),
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        subject=data["subject"],
        body=data["body"],
        body_html=sanitize.clean_outgoing(data["body_html"]) if data["body_html"].strip() else "",
        attachments=_attachment_data(kept, data["attachments"]),
        in_reply_to=data["in_reply_to"],
        references=data["references"].split(),
    )


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


def _too_big(outgoing: compose.Outgoing) -> str | None:
    """Why the message cannot go out, if it is over the size SMTP accepts (the limit smtpd enforces): base64
    makes attachments a third bigger, so the check is on the encoded message, not on the files."""
    limit = settings.MAILSITE_MAX_MESSAGE_SIZE
    size = compose.encoded_size(outgoing)
    if size <= limit:
        return None
    return (
        f"The message is too big: {filesize(size)} once encoded for mail, and the limit is {filesize(limit)}. "
        "Remove attachments or share big files as a link."
    )


def _refusals(refused: dict[str, actions.RecipientStatus]) -> str:
    reasons = {
        actions.RecipientStatus.UNKNOWN: "no such mailbox here",
        actions.RecipientStatus.OVER_QUOTA: "the mailbox is full",
    }
    return "; ".join(f"{rcpt}: {reasons.get(status, 'refused')}" for rcpt, status in refused.items())


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
    form = ComposeForm(request.POST, request.FILES, sending=action == "send")
    kept = _kept_from_post(request)
    if form.is_valid():
        outgoing = _outgoing(request, form, kept)
        previous = _own(request, form.cleaned_data["draft"], Role.DRAFTS)
        too_big = _too_big(outgoing)
        if too_big:
            form.add_error(None, too_big)
        elif action == "send":
            try:
                compose.send(outgoing, replying_to=_own(request, form.cleaned_data["replying"]), draft=previous)
            except actions.NotSent as exc:
                form.add_error(None, f"The message was not sent to anyone. {_refusals(exc.refused)}.")
            except actions.ServiceError as exc:
                form.add_error(None, f"The message was not sent: {exc}")
            else:
                address_book.remember_recipients(account(request), [*outgoing.to, *outgoing.cc, *outgoing.bcc])
                return _done(request, reverse("webmail:home"), "Message sent.")
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
                            "kept": [k.key for k in _kept_of(draft)],
                            "saved": timezone.now().isoformat(),
                        }
                    )
                return _done(request, f"{request.path}?draft={draft.pk}", "Draft saved.")
    if action == "autosave" or request.headers.get("X-Requested-With") == "fetch":
        return JsonResponse({"errors": form.errors.get_json_data(), "problems": _problems(form)}, status=400)
    return render(request, "webmail/compose.html", _page(request, form, kept), status=400)


def _page(request: HttpRequest, form: ComposeForm, kept: list[Kept]) -> dict:
    return {
        "form": form,
        "kept": kept,
        "kept_keys": [k.key for k in kept],
        "max_size": settings.MAILSITE_MAX_MESSAGE_SIZE,
        "undo_send_seconds": request.preferences.undo_send_seconds,  # type: ignore[attr-defined]
    }


@account_required
def contacts(request: HttpRequest) -> JsonResponse:
    """Suggestions for an address field: people the user has received mail from or written to."""
    return JsonResponse({"results": queries.contacts(account(request), request.GET.get("q", "")[:100])})
