"""Webmail views through Django's test client on the real database."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailboxes import actions
from mailboxes.models import AuthFailure, Mailbox, Message, Role
from tests.conftest import PASSWORD
from tests.webmail_support import deliver, folder, make_raw
from webmail import queries
from webmail.models import Preferences


@pytest.fixture
def alice(make_account):
    return make_account("alice@example.com", display_name="Alice Example")


@pytest.fixture
def signed_in(client, alice):
    response = client.post(reverse("webmail:login"), {"address": alice.address, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_sign_in_sign_out_and_redirects(client, alice) -> None:
    response = client.get(reverse("webmail:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("webmail:login"))
    bad = client.post(reverse("webmail:login"), {"address": alice.address, "password": "wrong"})
    assert bad.status_code == 401
    assert b"address or password is wrong" in bad.content
    good = client.post(reverse("webmail:login"), {"address": "ALICE@example.com ", "password": PASSWORD})
    assert good.status_code == 302
    inbox = client.get(reverse("webmail:home"), follow=True)
    assert inbox.status_code == 200
    assert b"INBOX" in inbox.content
    assert "Content-Security-Policy" in inbox
    client.post(reverse("webmail:logout"))
    assert client.get(reverse("webmail:home")).status_code == 302


def test_sign_in_is_throttled_like_the_protocols(client, alice, settings) -> None:
    for _ in range(settings.MAILSITE_AUTH_MAX_FAILURES):
        client.post(reverse("webmail:login"), {"address": alice.address, "password": "wrong"})
    assert AuthFailure.objects.filter(address=alice.address, protocol="web").count() == 5
    throttled = client.post(reverse("webmail:login"), {"address": alice.address, "password": PASSWORD})
    assert throttled.status_code == 429
    assert b"Too many failed" in throttled.content


def test_sign_in_keeps_only_local_next_urls(client, alice) -> None:
    response = client.post(
        reverse("webmail:login"), {"address": alice.address, "password": PASSWORD, "next": "https://evil.test/"}
    )
    assert response["Location"] == reverse("webmail:home")


def test_logout_needs_post(signed_in) -> None:
    assert signed_in.get(reverse("webmail:logout")).status_code == 405


def test_list_shows_newest_first_with_markers(signed_in, alice) -> None:
    deliver(alice, subject="Older one")
    starred = deliver(alice, subject="Newer one", attachments=[("a.pdf", "application/pdf", b"%PDF")])
    actions.set_flags(alice, starred.mailbox_id, [starred.uid], ["\\Flagged"], actions.FlagMode.ADD)
    page = signed_in.get(reverse("webmail:folder", args=[starred.mailbox_id])).content.decode()
    assert page.index("Newer one") < page.index("Older one")
    assert 'class="star on"' in page
    assert "Has attachments" in page
    assert page.count('class="row unread"') == 2
    assert 'aria-label="2 unread"' in page


def test_list_query_count_is_constant_whatever_the_page_size(signed_in, alice) -> None:
    inbox = folder(alice, Role.INBOX)
    url = reverse("webmail:folder", args=[inbox.pk])
    deliver(alice)
    with CaptureQueriesContext(connection) as one:
        assert signed_in.get(url).status_code == 200
    for n in range(60):
        deliver(alice, subject=f"Message {n}", attachments=[("f.txt", "text/plain", b"x")] if n % 2 else ())
    with CaptureQueriesContext(connection) as many:
        response = signed_in.get(url)
    assert response.content.count(b'class="row') == 50
    assert len(many) == len(one), [q["sql"] for q in many.captured_queries]
    with CaptureQueriesContext(connection) as threads:
        signed_in.get(url, {"view": "threads"})
    with CaptureQueriesContext(connection) as searched:
        signed_in.get(url, {"q": "Message"})
    assert len(threads) <= len(one) + 1
    assert len(searched) == len(one) + 1  # the page's ids, then its rows (webmail.queries.search)


def test_paging_goes_to_older_mail(signed_in, alice) -> None:
    for n in range(55):
        deliver(alice, subject=f"Numbered {n:02d}")
    url = reverse("webmail:folder", args=[folder(alice, Role.INBOX).pk])
    second = signed_in.get(url, {"page": 2}).content.decode()
    assert second.count('class="row') == 5
    assert "51\u201355 of 55" in second
    assert signed_in.get(url, {"page": "nonsense"}).status_code == 200
    assert signed_in.get(url, {"page": 999}).content.decode().count('class="row') == 5


def test_opening_a_message_marks_it_read_and_escapes_text(signed_in, alice) -> None:
    message = deliver(alice, text="See https://example.org/x?a=1&b=2 <script>alert(1)</script>")
    page = signed_in.get(reverse("webmail:message", args=[message.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert '<a href="https://example.org/x?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">' in page
    message.refresh_from_db()
    assert message.seen


def test_other_accounts_mail_is_not_found(signed_in, make_account) -> None:
    bob = make_account("bob@example.com")
    theirs = deliver(bob)
    assert signed_in.get(reverse("webmail:message", args=[theirs.pk])).status_code == 404
    assert signed_in.get(reverse("webmail:folder", args=[theirs.mailbox_id])).status_code == 404
    response = signed_in.post(reverse("webmail:act", args=[theirs.mailbox_id]), {"uid": theirs.uid, "action": "trash"})
    assert response.status_code == 404
    assert Message.objects.get(pk=theirs.pk).mailbox_id == theirs.mailbox_id


def test_html_frame_is_sanitised_under_a_strict_policy(signed_in, alice) -> None:
    message = deliver(
        alice,
        text=None,
        html=(
            '<p onclick="x()">Hi</p><script>alert(1)</script><img src="https://tracker.test/p.gif">'
            '<a href="javascript:x">j</a>'
        ),
    )
    page = signed_in.get(reverse("webmail:message", args=[message.pk])).content.decode()
    frame_url = re.search(r'<iframe[^>]*src="([^"]+)"', page)[1]
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    frame = signed_in.get(frame_url)
    body = frame.content.decode()
    assert "script" not in body
    assert "onclick" not in body
    assert "tracker.test" not in body
    assert "javascript" not in body
    assert frame["X-Blocked-Images"] == "1"
    assert "default-src 'none'" in frame["Content-Security-Policy"]
    assert "img-src data:;" in frame["Content-Security-Policy"]
    shown = signed_in.get(frame_url + "?images=1")
    assert "https://tracker.test/p.gif" in shown.content.decode()
    assert "img-src data: https: http:" in shown["Content-Security-Policy"]


def test_cid_images_are_inlined_as_data_urls(signed_in, alice) -> None:
    msg = email.message.EmailMessage(policy=policy.SMTP)
    msg["From"] = "bob@remote.test"
    msg["To"] = alice.address
    msg["Subject"] = "Logo"
    msg.set_content("text")
    msg.add_alternative('<p>Logo: <img src="cid:logo@x"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG\r\n\x1a\nfake", "image", "png", cid="<logo@x>")
    message = deliver(alice, msg.as_bytes())
    page = signed_in.get(reverse("webmail:message", args=[message.pk])).content.decode()
    frame_url = re.search(r'<iframe[^>]*src="([^"]+)"', page)[1]
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in signed_in.get(frame_url).content.decode()
    assert "attachments" not in page  # the inline image is not listed as an attachment


@pytest.mark.parametrize(
    ("filename_header", "expected"),
    [
        ("attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf", "€ rates.pdf"),
        ('attachment; filename="=?UTF-8?B?w6lsw6h2ZS5wZGY=?="', "élève.pdf"),
        ('attachment; filename="plain.pdf"', "plain.pdf"),
    ],
)
def test_attachment_download_has_the_decoded_filename(signed_in, alice, filename_header, expected) -> None:
    raw = (
        f"From: bob@remote.test\r\nTo: {alice.address}\r\nSubject: file\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n'
        f"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: {filename_header}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b--\r\n"
    ).encode()
    message = deliver(alice, raw)
    page = signed_in.get(reverse("webmail:message", args=[message.pk])).content.decode()
    link = re.search(r'<ul class="attachments".*?href="([^"]+)"', page, re.S)[1]
    assert expected in page
    response = signed_in.get(link)
    assert response.content == b"%PDF-1.4"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    if expected.isascii():
        assert f'filename="{expected}"' in disposition
    else:
        from urllib.parse import quote

        assert f"filename*=utf-8''{quote(expected)}" in disposition


def test_flags_move_trash_and_delete_forever(signed_in, alice) -> None:
    one, two = deliver(alice, subject="one"), deliver(alice, subject="two")
    inbox, trash, archive = folder(alice, Role.INBOX), folder(alice, Role.TRASH), folder(alice, Role.ARCHIVE)
    act = reverse("webmail:act", args=[inbox.pk])
    signed_in.post(act, {"uid": [one.uid, two.uid], "action": "read"})
    assert Message.objects.filter(mailbox=inbox, seen=True).count() == 2
    signed_in.post(act, {"uid": [one.uid], "action": "star"})
    assert Message.objects.get(pk=one.pk).flagged
    signed_in.post(act, {"uid": [one.uid], "action": "move", "target": archive.pk})
    assert Message.objects.get(pk=one.pk).mailbox_id == archive.pk
    signed_in.post(act, {"uid": [two.uid], "action": "trash"})
    trashed = Message.objects.get(pk=two.pk)
    assert trashed.mailbox_id == trash.pk
    signed_in.post(reverse("webmail:act", args=[trash.pk]), {"uid": [trashed.uid], "action": "delete"})
    assert not Message.objects.filter(pk=two.pk).exists()
    response = signed_in.post(act, {"action": "trash"}, follow=True)
    assert b"Select at least one message" in response.content
    assert signed_in.post(act, {"uid": ["x"], "action": "trash"}).status_code == 400


def test_empty_trash(signed_in, alice) -> None:
    inbox, trash = folder(alice, Role.INBOX), folder(alice, Role.TRASH)
    for _ in range(3):
        message = deliver(alice)
        actions.move(alice, inbox.pk, [message.uid], trash.pk)
    signed_in.post(reverse("webmail:empty_trash"))
    assert not Message.objects.filter(mailbox=trash).exists()
    alice.refresh_from_db()
    assert alice.used_bytes == 0


def test_folders_create_rename_delete_but_not_special_ones(signed_in, alice) -> None:
    signed_in.post(reverse("webmail:folder_create"), {"name": "Projects/2025"})
    created = Mailbox.objects.get(account=alice, name="Projects/2025")
    signed_in.post(reverse("webmail:folder_rename", args=[created.pk]), {"name": "Projects/Done"})
    assert Mailbox.objects.filter(account=alice, name="Projects/Done").exists()
    bad = signed_in.post(reverse("webmail:folder_create"), {"name": "bad\nname"}, follow=True)
    assert b"Line breaks are not allowed" in bad.content
    signed_in.post(reverse("webmail:folder_delete", args=[created.pk]))
    assert not Mailbox.objects.filter(pk=created.pk).exists()
    inbox = folder(alice, Role.INBOX)
    refused = signed_in.post(reverse("webmail:folder_delete", args=[inbox.pk]), follow=True)
    assert b"special folder" in refused.content
    assert Mailbox.objects.filter(pk=inbox.pk).exists()
    signed_in.post(reverse("webmail:folder_rename", args=[folder(alice, Role.SENT).pk]), {"name": "Elsewhere"})
    assert folder(alice, Role.SENT).name == "Sent"


def test_search_in_folder_and_everywhere(signed_in, alice) -> None:
    deliver(alice, subject="Invoice March", sender="Carol <carol@billing.test>")
    other = deliver(alice, subject="Lunch", text="the quarterly numbers are attached")
    archive = folder(alice, Role.ARCHIVE)
    actions.move(alice, other.mailbox_id, [other.uid], archive.pk)
    inbox_url = reverse("webmail:folder", args=[folder(alice, Role.INBOX).pk])
    for query in ("invoice", "carol", "billing", "carol@billing.test"):
        assert b"Invoice March" in signed_in.get(inbox_url, {"q": query}).content, query
    assert b"Lunch" not in signed_in.get(inbox_url, {"q": "quarterly"}).content
    everywhere = signed_in.get(inbox_url, {"q": "quarterly", "in": "all"}).content.decode()
    assert "Lunch" in everywhere
    assert "[Archive]" in everywhere
    assert b"Lunch" in signed_in.get(reverse("webmail:search"), {"q": "quarterly"}).content
    assert b"No messages match" in signed_in.get(inbox_url, {"q": "zebra"}).content


def test_search_uses_the_full_text_index(alice) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the GIN index exists on PostgreSQL only; SQLite uses substring matching")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(f"EXPLAIN SELECT id FROM mailboxes_message WHERE {queries.SEARCH_MATCH}", ["x", "x"])
        plan = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "message_search" in plan
    assert "message_unindexed" in plan, "the messages not indexed yet are found through their partial index"


def test_search_finds_mail_stored_by_every_writer(signed_in, alice) -> None:
    delivered = deliver(alice, subject="Harbour delivered")
    appended = actions.append(alice, folder(alice, Role.SENT).pk, make_raw(to="x@remote.test", subject="Harbour sent"))
    actions.copy(alice, delivered.mailbox_id, [delivered.uid], folder(alice, Role.ARCHIVE).pk)
    actions.move(alice, appended.mailbox_id, [appended.uid], folder(alice, Role.DRAFTS).pk)
    page = signed_in.get(reverse("webmail:search"), {"q": "harbour"}).content.decode()
    assert page.count('class="row') == 3
    for folder_name in ("Archive", "INBOX", "Drafts"):
        assert f"[{folder_name}]" in page
    assert "1\u20133 of 3<" in page


def test_conversations_and_search_are_counted_up_to_a_cap(signed_in, alice, monkeypatch) -> None:
    # Small page (the user's setting) and cap so the cap is reached with a few messages; the counting code is the
    # real one.
    Preferences.objects.create(account=alice, page_size=2)
    monkeypatch.setattr(queries, "COUNT_CAP", 4)
    for n in range(7):
        deliver(alice, subject=f"Capped {n}")
    url = reverse("webmail:folder", args=[folder(alice, Role.INBOX).pk])
    for params in ({"view": "threads"}, {"q": "capped"}):
        pagers = []
        for number in (1, 2, 3, 4, 99):
            page = signed_in.get(url, {**params, "page": number}).content.decode()
            pagers.append((re.search(r'<nav class="pager".*?<span>(.*?)</span>', page, re.S)[1], 'rel="next"' in page))
        assert pagers == [
            ("1\u20132 of 4+", True),
            ("3\u20134 of 4+", True),
            ("5\u20136 of 6+", True),  # counted as far as the page asked for
            ("7\u20137 of 7", False),
            ("7\u20137 of 7", False),
        ], params


def test_conversations_are_ordered_by_latest_activity_in_the_folder(signed_in, alice) -> None:
    inbox = folder(alice, Role.INBOX)
    trip = deliver(alice, subject="Trip")
    budget = deliver(alice, subject="Budget")
    reply = deliver(alice, subject="Re: Trip", headers={"In-Reply-To": f"<{trip.message_id}>"})
    assert reply.thread_id == trip.thread_id
    actions.set_flags(alice, inbox.pk, [trip.uid], ["\\Seen", "\\Flagged"], actions.FlagMode.ADD)

    def rows() -> list[tuple[int, int, int, bool]]:
        page = queries.conversation_page(inbox, 1)
        assert (page.total, page.capped) == (len(page.items), False)
        return [(c.latest.pk, c.count, c.unread, c.flagged) for c in page.items]

    assert rows() == [(reply.pk, 2, 1, True), (budget.pk, 1, 1, False)]
    html = signed_in.get(reverse("webmail:folder", args=[inbox.pk]), {"view": "threads"}).content.decode()
    assert html.index("Re: Trip") < html.index("Budget")
    assert "1\u20132 of 2<" in html
    # The reply leaves the folder: the thread is ranked by its newest message still here.
    actions.move(alice, inbox.pk, [reply.uid], folder(alice, Role.ARCHIVE).pk)
    assert rows() == [(budget.pk, 1, 1, False), (trip.pk, 1, 0, True)]
    # Two messages of one thread with the same INTERNALDATE: the thread is listed once, by the later row.
    same_time = budget.internal_date
    raw = make_raw(to=alice.address, subject="Re: Budget", headers={"In-Reply-To": f"<{budget.message_id}>"})
    twin = actions.append(alice, inbox.pk, raw, internal_date=same_time)
    assert twin.thread_id == budget.thread_id
    assert twin.pk > budget.pk
    assert rows() == [(twin.pk, 2, 2, False), (trip.pk, 1, 0, True)]
    actions.delete_messages(alice, inbox.pk, [twin.uid, budget.uid])
    assert rows() == [(trip.pk, 1, 0, True)]


def test_conversation_view_spans_folders_including_sent(signed_in, alice) -> None:
    first = deliver(alice, subject="Trip plans", text="Where shall we go?")
    response = signed_in.get(reverse("webmail:compose"), {"reply": first.pk})
    form = response.context["form"]
    data = {
        name: form.initial.get(name, "") for name in ("to", "cc", "bcc", "subject", "body", "in_reply_to", "references")
    }
    data.update(replying=first.pk, action="send", to="alice@example.com")
    assert signed_in.post(reverse("webmail:compose"), data).status_code == 302
    sent = Message.objects.get(mailbox=folder(alice, Role.SENT))
    assert sent.thread_id == first.thread_id
    assert sent.in_reply_to == first.message_id
    assert Message.objects.get(pk=first.pk).answered
    page = signed_in.get(reverse("webmail:thread", args=[first.thread_id])).content.decode()
    assert page.count('class="thread-item"') == 3  # the original, the copy in Sent and the one delivered back
    assert "Where shall we go?" in page
    assert "Sent" in page
    threads = signed_in.get(reverse("webmail:folder", args=[first.mailbox_id]), {"view": "threads"})
    assert threads.content.decode().count('class="row') == 1


def test_contacts_suggest_correspondents(signed_in, alice) -> None:
    deliver(alice, sender="Carol Jones <carol@billing.test>")
    actions.append(
        alice,
        folder(alice, Role.SENT).pk,
        make_raw(to="Dave <dave@other.test>", sender=alice.address),
        flags=["\\Seen"],
    )
    assert signed_in.get(reverse("webmail:contacts"), {"q": "car"}).json() == {
        "results": ["Carol Jones <carol@billing.test>"]
    }
    assert signed_in.get(reverse("webmail:contacts"), {"q": "dav"}).json() == {"results": ["Dave <dave@other.test>"]}
