"""Send later: the form's time in the user's zone, the send-time checks, and sending each message once."""

from __future__ import annotations

import datetime
import email
import zoneinfo
from email import policy

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from mailboxes import actions
from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.webmail_support import deliver, folder
from webmail import scheduling
from webmail.models import Preferences, ScheduledSend

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.fixture
def alice(make_account):
    alice = make_account("alice@example.com", display_name="Alice Example")
    Preferences.objects.create(account=alice, time_zone="Asia/Tokyo")
    return alice


@pytest.fixture
def bob(make_account):
    return make_account("bob@example.com")


@pytest.fixture
def signed_in(client, alice):
    assert client.login(username=alice.address, password=PASSWORD)
    return client


def _local(when: datetime.datetime) -> str:
    """The value a datetime-local field holds for `when`, in Alice's zone."""
    return when.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M:%S")


def _schedule(client, when: datetime.datetime, **fields):
    data = {"to": "bob@example.com", "subject": "Later", "body": "Sent later.\n", "action": "schedule"}
    return client.post(reverse("webmail:compose"), data | {"send_at": _local(when)} | fields)


def _due_now(entry: ScheduledSend) -> None:
    """Time passes: the message falls due."""
    ScheduledSend.objects.filter(pk=entry.pk).update(send_at=timezone.now() - datetime.timedelta(seconds=1))


def test_the_time_is_read_in_the_users_zone_and_the_message_waits_in_drafts(signed_in, alice, bob) -> None:
    when = (timezone.now() + datetime.timedelta(hours=3)).replace(microsecond=0)
    response = _schedule(signed_in, when)
    assert response.status_code == 302
    assert response["Location"] == reverse("webmail:scheduled")
    entry = ScheduledSend.objects.get()
    assert entry.send_at == when
    assert entry.message.mailbox == folder(alice, Role.DRAFTS)
    assert not Message.objects.filter(account=bob).exists()
    assert scheduling.send_one(entry.pk) is False  # not due yet
    page = signed_in.get(reverse("webmail:scheduled"))
    assert when.astimezone(TOKYO).strftime("%H:%M:%S").encode() in page.content
    assert b"Asia/Tokyo" in page.content


@pytest.mark.parametrize(
    ("send_at", "problem"),
    [("", "Choose when to send it."), ("2020-01-01T10:00:00", "Choose a time in the future."), ("soon", "valid")],
)
def test_a_missing_past_or_unreadable_time_is_refused_and_nothing_is_stored(signed_in, send_at, problem) -> None:
    data = {"to": "bob@example.com", "subject": "Later", "body": "x", "action": "schedule", "send_at": send_at}
    response = signed_in.post(reverse("webmail:compose"), data, headers={"X-Requested-With": "fetch"})
    assert response.status_code == 400
    assert any(problem in line for line in response.json()["problems"]), response.json()
    assert not ScheduledSend.objects.exists()
    assert not Message.objects.exists()


def test_a_time_that_does_not_exist_in_the_users_zone_is_refused(signed_in, alice) -> None:
    Preferences.objects.filter(account=alice).update(time_zone="Europe/Paris")
    year = timezone.now().year + 1
    # Clocks in Paris go from 02:00 to 03:00 on the last Sunday of March.
    sunday = max(datetime.date(year, 3, day) for day in range(25, 32) if datetime.date(year, 3, day).weekday() == 6)
    data = {"to": "bob@example.com", "subject": "Later", "action": "schedule", "send_at": f"{sunday}T02:30:00"}
    response = signed_in.post(reverse("webmail:compose"), data)
    assert response.status_code == 400
    assert b"couldn\xe2\x80\x99t be interpreted in time zone Europe/Paris" in response.content
    assert not ScheduledSend.objects.exists()


def test_a_due_message_goes_through_send_once_answering_the_original(signed_in, alice, bob) -> None:
    original = deliver(alice, subject="Question")
    response = _schedule(
        signed_in,
        timezone.now() + datetime.timedelta(minutes=5),
        subject="Re: Question",
        replying=original.pk,
        in_reply_to=original.message_id,
        references=original.message_id,
        bcc="carol@remote.test",
        attachments=[SimpleUploadedFile("plan.txt", b"PLAN", content_type="text/plain")],
    )
    assert response.status_code == 302
    entry = ScheduledSend.objects.get()
    _due_now(entry)
    assert scheduling.send_one(entry.pk) is True
    assert scheduling.send_one(entry.pk) is False  # nothing left to send
    received = Message.objects.get(account=bob)
    raw = email.message_from_bytes(bytes(received.body.raw), policy=policy.default)
    assert raw["Bcc"] is None
    assert raw["In-Reply-To"] == original.message_id
    assert [p.get_content() for p in raw.iter_attachments()] == ["PLAN"]
    assert Message.objects.get(mailbox=folder(alice, Role.SENT)).subject == "Re: Question"
    assert not Message.objects.filter(mailbox=folder(alice, Role.DRAFTS)).exists()
    assert not ScheduledSend.objects.exists()
    original.refresh_from_db()
    assert original.answered


def test_a_full_mailbox_at_send_time_leaves_the_draft_and_says_why(signed_in, alice, bob) -> None:
    _schedule(signed_in, timezone.now() + datetime.timedelta(minutes=5))
    entry = ScheduledSend.objects.get()
    bob.quota_bytes = 10
    bob.save()
    _due_now(entry)
    assert scheduling.send_one(entry.pk) is False
    entry.refresh_from_db()
    assert entry.state == ScheduledSend.State.FAILED
    assert entry.reason == "The message was not sent to anyone. bob@example.com: the mailbox is full."
    assert Message.objects.filter(mailbox=folder(alice, Role.DRAFTS)).exists()
    assert not Message.objects.filter(account=bob).exists()
    assert b"Not sent: The message was not sent to anyone." in signed_in.get(reverse("webmail:scheduled")).content
    assert scheduling.send_due() == 0  # a refused message is not tried again by itself


def test_a_message_over_the_size_limit_at_send_time_is_not_sent(signed_in, alice, bob, settings) -> None:
    _schedule(signed_in, timezone.now() + datetime.timedelta(minutes=5), body="x" * 5000)
    entry = ScheduledSend.objects.get()
    settings.MAILSITE_MAX_MESSAGE_SIZE = 2000  # lowered by the administrator meanwhile
    _due_now(entry)
    assert scheduling.send_due() == 0
    entry.refresh_from_db()
    assert entry.reason.startswith("The message is too big:")
    assert not Message.objects.filter(account=bob).exists()


def test_an_author_no_longer_allowed_at_send_time_is_not_sent(signed_in, alice, bob) -> None:
    _schedule(signed_in, timezone.now() + datetime.timedelta(minutes=5))
    entry = ScheduledSend.objects.get()
    # The display name was changed meanwhile to one that reads as another address, which submission refuses.
    actions.update_account(alice, display_name="boss@example.com")
    _due_now(entry)
    assert scheduling.send_one(entry.pk) is False
    entry.refresh_from_db()
    assert "a From: display name may not look like an address" in entry.reason
    alice.is_active = False
    alice.save()
    ScheduledSend.objects.filter(pk=entry.pk).update(state=ScheduledSend.State.WAITING)
    assert scheduling.send_one(entry.pk) is False
    entry.refresh_from_db()
    assert entry.reason == "your account may not send mail any more."
    assert not Message.objects.filter(account=bob).exists()


def test_a_claimed_message_is_not_sent_by_a_second_sender(signed_in, alice, bob) -> None:
    _schedule(signed_in, timezone.now() + datetime.timedelta(minutes=5))
    entry = ScheduledSend.objects.get()
    _due_now(entry)
    assert scheduling._claim(entry.pk)  # another worker is sending it
    assert scheduling.send_due() == 0
    assert not Message.objects.filter(account=bob).exists()
    # That worker died: once its claim runs out, the message goes.
    ScheduledSend.objects.filter(pk=entry.pk).update(claimed_until=timezone.now() - datetime.timedelta(seconds=1))
    assert scheduling.send_due() == 1
    assert Message.objects.filter(account=bob).count() == 1


def test_deleting_the_draft_cancels_and_cancel_keeps_the_draft(signed_in, alice, bob) -> None:
    _schedule(signed_in, timezone.now() + datetime.timedelta(minutes=5))
    entry = ScheduledSend.objects.get()
    draft = entry.message
    actions.delete_messages(alice, draft.mailbox_id, [draft.uid])
    assert not ScheduledSend.objects.exists()

    _schedule(signed_in, timezone.now() + datetime.timedelta(minutes=5))
    entry = ScheduledSend.objects.get()
    response = signed_in.post(reverse("webmail:scheduled_cancel", args=[entry.pk]))
    assert response.status_code == 302
    assert not ScheduledSend.objects.exists()
    assert Message.objects.filter(pk=entry.message_id, mailbox=folder(alice, Role.DRAFTS)).exists()


def test_another_users_scheduled_message_cannot_be_cancelled_or_opened(client, signed_in, alice, bob) -> None:
    _schedule(signed_in, timezone.now() + datetime.timedelta(minutes=5))
    entry = ScheduledSend.objects.get()
    client.logout()
    assert client.login(username=bob.address, password=PASSWORD)
    client.post(reverse("webmail:scheduled_cancel", args=[entry.pk]))
    response = client.post(reverse("webmail:scheduled_edit", args=[entry.pk]))
    assert response["Location"] == reverse("webmail:scheduled")
    assert ScheduledSend.objects.filter(pk=entry.pk).exists()
    assert b"Later" not in client.get(reverse("webmail:scheduled")).content


def test_a_scheduled_draft_opened_in_compose_says_when_it_goes(signed_in, alice) -> None:
    when = (timezone.now() + datetime.timedelta(days=1)).replace(microsecond=0)
    _schedule(signed_in, when)
    entry = ScheduledSend.objects.get()
    page = signed_in.get(reverse("webmail:compose"), {"draft": entry.message_id})
    assert b"Scheduled to be sent on" in page.content
    assert when.astimezone(TOKYO).strftime("%H:%M").encode() in page.content
    assert b"Scheduled to be sent on" not in signed_in.get(reverse("webmail:compose")).content
