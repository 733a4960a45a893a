"""Compose through the webmail: sending, replies, forwards, drafts and header injection."""

from __future__ import annotations

import base64
import email
import re
from email import policy

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailboxes.models import Message, Role
from relay.models import OutboundRecipient
from tests.conftest import PASSWORD
from tests.webmail_support import deliver, folder

FIELDS = ("to", "cc", "bcc", "subject", "body", "in_reply_to", "references", "replying", "draft")


@pytest.fixture
def alice(make_account):
    return make_account("alice@example.com", display_name="Alice Example")


@pytest.fixture
def bob(make_account):
    return make_account("bob@example.com")


@pytest.fixture
def signed_in(client, alice):
    assert client.login(username=alice.address, password=PASSWORD)
    return client


def prefilled(client, **query) -> dict:
    """What the compose form would submit unchanged for a reply/forward/draft."""
    response = client.get(reverse("webmail:compose"), query)
    assert response.status_code == 200
    form = response.context["form"]
    data = {name: "" if form.initial.get(name) is None else form.initial.get(name, "") for name in FIELDS}
    data["keep"] = response.context["kept_keys"]
    return data


def parsed(message: Message) -> email.message.EmailMessage:
    return email.message_from_bytes(bytes(message.body.raw), policy=policy.default)


def test_send_with_attachments_to_a_local_account_stores_a_copy_in_sent(signed_in, alice, bob) -> None:
    files = [
        SimpleUploadedFile("report.pdf", b"%PDF-1.4 data", content_type="application/pdf"),
        SimpleUploadedFile("naïve notes.txt", "hé".encode(), content_type="text/plain"),
    ]
    response = signed_in.post(
        reverse("webmail:compose"),
        {"to": "Bob <bob@example.com>", "bcc": "alice@example.com", "subject": "Report", "body": "Attached.\n"}
        | {"action": "send", "attachments": files},
    )
    assert response.status_code == 302
    received = Message.objects.get(account=bob)
    assert received.subject == "Report"
    assert received.has_attachments
    raw = parsed(received)
    assert raw["Bcc"] is None  # Bcc never travels with the message
    names = [part.get_filename() for part in raw.iter_attachments()]
    assert names == ["report.pdf", "naïve notes.txt"]
    sent = Message.objects.get(mailbox=folder(alice, Role.SENT))
    assert sent.seen
    assert "alice@example.com" in sent.bcc_addresses  # the sender's own copy keeps it
    assert Message.objects.filter(mailbox=folder(alice, Role.INBOX)).count() == 1  # the Bcc copy


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "subject"])
@pytest.mark.parametrize("breaker", ["\r\nBcc: x@evil.test", "\nBcc: x@evil.test", "\rX: y", "\u2028X: y"])
def test_typed_line_breaks_are_refused_and_nothing_is_sent(signed_in, bob, field, breaker) -> None:
    data = {"to": "bob@example.com", "subject": "Hi", "body": "b", "action": "send"}
    data[field] = data.get(field, "bob@example.com") + breaker
    response = signed_in.post(reverse("webmail:compose"), data)
    assert response.status_code == 400
    assert b"Line breaks are not allowed" in response.content
    assert not Message.objects.filter(account=bob).exists()


@pytest.mark.parametrize(
    "hostile_subject", ["=?UTF-8?Q?hi=0ABcc:_x@evil.test?=", "=?UTF-8?B?aGkNCkJjYzogeEBldmlsLnRlc3Q=?="]
)
def test_reply_to_an_encoded_word_line_break_never_makes_a_header(signed_in, alice, bob, hostile_subject) -> None:
    raw = (
        "From: =?UTF-8?Q?Mallory=0D=0ABcc:_y@evil.test?= <bob@example.com>\r\n"
        f"To: {alice.address}, =?UTF-8?Q?Eve=0ABcc:_z@evil.test?= <bob@example.com>\r\n"
        f"Subject: {hostile_subject}\r\nMessage-ID: <hostile@remote.test>\r\n\r\nhello\r\n"
    ).encode()
    original = deliver(alice, raw)
    assert "\n" in original.subject  # the store keeps what the encoded-word decodes to
    for mode in ("reply", "replyall", "forward"):
        data = prefilled(signed_in, **{mode: original.pk})
        assert "\n" not in data["subject"]
        assert "\r" not in data["subject"]
        data.update(action="send", to=data["to"] or "bob@example.com")
        response = signed_in.post(reverse("webmail:compose"), data)
        assert response.status_code == 302, re.findall(rb"errorlist.*|class=\"error\".*", response.content)
    received = list(Message.objects.filter(account=bob))
    assert len(received) == 3  # the reply, the reply to all (Bob in To and Cc, stored once) and the forward
    for message in received:
        headers = bytes(message.body.raw).split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"^bcc:", headers, re.I | re.M), headers
        assert message.bcc_addresses == ""
    assert not Message.objects.filter(account__address__endswith="evil.test").exists()


def test_reply_sets_threading_headers_and_quotes(signed_in, alice, bob) -> None:
    original = deliver(
        alice,
        sender="Bob <bob@example.com>",
        subject="Plans",
        text="Line one\nLine two",
        headers={"References": "<root@remote.test>"},
    )
    data = prefilled(signed_in, replyall=original.pk)
    assert data["subject"] == "Re: Plans"
    assert data["to"] == "Bob <bob@example.com>"
    assert "> Line one\n> Line two" in data["body"]
    assert data["references"] == f"<root@remote.test> {original.message_id}"
    data["action"] = "send"
    assert signed_in.post(reverse("webmail:compose"), data).status_code == 302
    reply = parsed(Message.objects.get(account=bob))
    assert reply["In-Reply-To"] == original.message_id
    assert reply["References"] == f"<root@remote.test> {original.message_id}"


def test_forward_carries_the_attachments(signed_in, alice, bob) -> None:
    original = deliver(alice, subject="Photos", attachments=[("cat.jpg", "image/jpeg", b"\xff\xd8\xffcat")])
    data = prefilled(signed_in, forward=original.pk)
    assert data["subject"] == "Fwd: Photos"
    assert "---------- Forwarded message ----------" in data["body"]
    assert len(data["keep"]) == 1
    data.update(action="send", to="bob@example.com")
    assert signed_in.post(reverse("webmail:compose"), data).status_code == 302
    forwarded = parsed(Message.objects.get(account=bob))
    [part] = list(forwarded.iter_attachments())
    assert part.get_filename() == "cat.jpg"
    assert part.get_content() == b"\xff\xd8\xffcat"


def test_external_recipients_are_queued_for_the_relay(signed_in, alice, bob) -> None:
    data = {"to": "bob@example.com, carol@elsewhere.test", "subject": "Out", "body": "y", "action": "send"}
    assert signed_in.post(reverse("webmail:compose"), data).status_code == 302
    assert Message.objects.filter(account=bob, subject="Out").exists()
    [queued] = OutboundRecipient.objects.filter(address="carol@elsewhere.test")
    assert queued.message.sender == alice.address
    assert b"Subject: Out" in bytes(queued.message.raw)
    assert Message.objects.filter(account=alice, mailbox__role=Role.SENT, subject="Out").exists()


def test_unknown_local_recipient_and_bad_addresses_are_refused(signed_in, bob) -> None:
    response = signed_in.post(reverse("webmail:compose"), {"to": "nobody@example.com", "action": "send"})
    assert b"nobody@example.com: no such mailbox here" in response.content
    assert not Message.objects.filter(mailbox__role=Role.SENT).exists()
    response = signed_in.post(reverse("webmail:compose"), {"to": "bob@@example", "action": "send"})
    assert b"is not a valid address" in response.content
    response = signed_in.post(reverse("webmail:compose"), {"to": "", "action": "send"})
    assert b"Add at least one recipient" in response.content


def test_drafts_autosave_replace_and_resume_with_attachments(signed_in, alice, bob) -> None:
    url = reverse("webmail:compose")
    first = signed_in.post(
        url,
        {"to": "bob@example.com", "subject": "Draft", "body": "v1", "action": "save"}
        | {"attachments": [SimpleUploadedFile("a.txt", b"AAA", content_type="text/plain")]},
    )
    assert first.status_code == 302
    draft = Message.objects.get(mailbox=folder(alice, Role.DRAFTS))
    assert draft.draft
    data = prefilled(signed_in, draft=draft.pk)
    assert data["body"].strip() == "v1"
    assert data["draft"] == draft.pk
    data.update(body="v2", action="autosave")
    saved = signed_in.post(url, data, headers={"X-Requested-With": "fetch"})
    assert saved.status_code == 200
    result = saved.json()
    assert len(result["kept"]) == 1
    [replaced] = Message.objects.filter(mailbox=folder(alice, Role.DRAFTS))
    assert replaced.pk == result["draft"] != draft.pk
    data.update(draft=result["draft"], keep=result["kept"], action="send")
    assert signed_in.post(url, data).status_code == 302
    assert not Message.objects.filter(mailbox=folder(alice, Role.DRAFTS)).exists()
    received = parsed(Message.objects.get(account=bob))
    assert received.get_body(("plain",)).get_content().strip() == "v2"
    assert [p.get_content() for p in received.iter_attachments()] == ["AAA"]


def test_autosave_with_bad_fields_reports_json_errors(signed_in) -> None:
    response = signed_in.post(reverse("webmail:compose"), {"to": "not an address", "action": "autosave"})
    assert response.status_code == 400
    assert "to" in response.json()["errors"]


def test_html_from_the_editor_is_cleaned_again_and_pasted_images_become_related_parts(signed_in, alice, bob) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    data = {
        "to": "bob@example.com",
        "subject": "Rich",
        "body": "Hi there",
        "body_html": f'<p onclick="steal()">Hi <b>there</b></p><script>alert(1)</script>'
        f'<img src="data:image/png;base64,{png}"><a href="javascript:alert(2)">x</a>'
        '<form action="https://evil.test/"><input name="q"></form>',
        "action": "send",
    }
    assert signed_in.post(reverse("webmail:compose"), data).status_code == 302
    received = parsed(Message.objects.get(account=bob))
    assert received.get_body(("plain",)).get_content().strip() == "Hi there"
    html = received.get_body(("html",)).get_content()
    assert "<b>there</b>" in html
    for bad in ("onclick", "<script", "javascript:", "<form", "<input", "data:"):
        assert bad not in html, bad
    [image] = [part for part in received.walk() if part.get_content_type() == "image/png"]
    assert image.get_content() == b"\x89PNG\r\n\x1a\nfake"
    assert f"cid:{image['Content-ID'].strip('<>')}" in html


def test_a_draft_written_in_html_resumes_in_the_editor(signed_in, alice) -> None:
    url = reverse("webmail:compose")
    data = {
        "to": "bob@example.com",
        "subject": "D",
        "body": "Plan",
        "body_html": "<p><i>Plan</i></p>",
        "action": "save",
    }
    assert signed_in.post(url, data).status_code == 302
    draft = Message.objects.get(mailbox=folder(alice, Role.DRAFTS))
    page = signed_in.get(url, {"draft": draft.pk}).content.decode()
    [field] = re.findall(r'<input type="hidden" name="body_html"[^>]*>', page)
    assert "&lt;i&gt;Plan&lt;/i&gt;" in field, field
