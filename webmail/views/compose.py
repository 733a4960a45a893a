"""Writing mail: new messages, replies, forwards and drafts; sending through the store's services."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages as notices
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from mailboxes import services
from mailboxes.models import Message, Role
from mailcore.headers import decode_words
from mailcore.mime import Envelope, EnvelopeAddress, decode_body
from mailcore.subject import base_subject
from webmail import compose, queries
from webmail.addresses import flatten, format_address
from webmail.forms import ComposeForm
from webmail.reading import Reading
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
            initial.update(subject=_prefixed("Fwd:", original.subject), body=header + _quoted_text(original))
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
            in_reply_to=original.message_id if compose.message_ids([original.message_id]) else "",
            references=" ".join(compose.reply_references(original)),
            replying=original.pk,
        )
        return initial, [], original
    return initial, [], None


def _outgoing(request: HttpRequest, form: ComposeForm, kept: list[Kept]) -> compose.Outgoing:
    data = form.cleaned_data
    return compose.Outgoing(
        sender=account(request),
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        subject=data["subject"],
        body=data["body"],
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


@account_required
def compose_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        initial, kept, _ = _initial(request)
        form = ComposeForm(initial=initial)
        return render(request, "webmail/compose.html", {"form": form, "kept": kept, "kept_keys": [k.key for k in kept]})
    action = request.POST.get("action", "send")
    form = ComposeForm(request.POST, request.FILES, sending=action == "send")
    kept = _kept_from_post(request)
    autosave = action == "autosave"
    if form.is_valid():
        outgoing = _outgoing(request, form, kept)
        previous = _own(request, form.cleaned_data["draft"], Role.DRAFTS)
        if action == "send":
            unknown = compose.unknown_recipients(outgoing.recipients)
            if unknown:
                form.add_error(None, f"No such mailbox here: {', '.join(unknown)}")
            if not form.errors:
                try:
                    compose.send(outgoing, replying_to=_own(request, form.cleaned_data["replying"]), draft=previous)
                except services.ServiceError as exc:
                    form.add_error(None, f"The message was not sent: {exc}")
                else:
                    notices.success(request, "Message sent.")
                    return redirect("webmail:home")
        else:
            try:
                draft = compose.save_draft(outgoing, previous=previous)
            except services.ServiceError as exc:
                form.add_error(None, f"The draft was not saved: {exc}")
            else:
                if autosave:
                    return JsonResponse(
                        {
                            "draft": draft.pk,
                            "kept": [k.key for k in _kept_of(draft)],
                            "saved": timezone.now().isoformat(),
                        }
                    )
                notices.success(request, "Draft saved.")
                return redirect(f"{request.path}?draft={draft.pk}")
    if autosave:
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    return render(
        request,
        "webmail/compose.html",
        {"form": form, "kept": kept, "kept_keys": [k.key for k in kept]},
        status=400,
    )


@account_required
def contacts(request: HttpRequest) -> JsonResponse:
    """Suggestions for an address field: people the user has received mail from or written to."""
    return JsonResponse({"results": queries.contacts(account(request), request.GET.get("q", "")[:100])})
