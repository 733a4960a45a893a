"""Accent-insensitive and CJK full-text search in the webmail, on PostgreSQL's stored search document."""

from __future__ import annotations

import secrets

import pytest
from django.db import connection
from django.urls import reverse

from mailboxes.actions import text_index
from mailboxes.models import Message, Role
from tests.conftest import PASSWORD
from tests.webmail_support import deliver, folder


@pytest.fixture
def alice(make_account):
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")
    return make_account("alice@example.com")


@pytest.fixture
def found(client, alice):
    response = client.post(reverse("webmail:login"), {"address": alice.address, "password": PASSWORD})
    assert response.status_code == 302

    def search(query: str) -> list[str]:
        page = client.get(reverse("webmail:search"), {"q": query})
        assert page.status_code == 200
        rows = page.context["page"].items
        return sorted(message.subject for message in rows)

    return search


def test_accents_are_ignored_both_ways(alice, found) -> None:
    deliver(alice, subject="Réunion", text="On se retrouve au Café de la Gare, près de la crème brûlée.")
    deliver(alice, subject="Plain", text="Meet me at the cafe on the corner.")
    deliver(alice, subject="Straße", sender="Jürgen Groß <jurgen@example.de>", text="Die Straße ist gesperrt.")
    assert found("cafe") == ["Plain", "Réunion"]
    assert found("café") == ["Plain", "Réunion"]
    assert found("CAFÉ") == ["Plain", "Réunion"]
    assert found("creme brulee") == ["Réunion"]
    assert found('"café de la gare"') == ["Réunion"]  # a phrase keeps its word order in the folded text
    assert found('"gare de la cafe"') == []
    assert found("reunion") == ["Réunion"]  # the subject is folded too
    assert found("strasse") == ["Straße"]
    assert found("jurgen gross") == ["Straße"]  # and the sender's name
    assert found("cafe -corner") == ["Réunion"]


def test_cjk_words_are_found_inside_sentences(alice, found) -> None:
    deliver(alice, subject="会議のお知らせ", text="明日の会議は東京都の本社で行います。よろしくお願いします。")
    deliver(alice, subject="天气", text="今天北京的天气很好，我们去公园散步吧。")  # noqa: RUF001 (Chinese comma)
    deliver(alice, subject="안부", text="안녕하세요, 서울에서 인사드립니다.")
    deliver(alice, subject="Plain", text="Tokyo and Beijing, in English.")
    assert found("東京") == ["会議のお知らせ"]
    assert found("本社") == ["会議のお知らせ"]
    assert found("お知らせ") == ["会議のお知らせ"]  # in the subject
    assert found("北京 公园") == ["天气"]
    assert found("天气很好") == ["天气"]
    assert found("天气很坏") == []  # every bigram must be there, in order
    assert found("京的") == ["天气"]
    assert found("園") == []
    assert found("园") == ["天气"]  # one character: found wherever it stands
    assert found("서울") == ["안부"]
    assert found("-東京 北京") == ["天气"]
    assert found("都の本") == ["会議のお知らせ"]
    assert found("本都") == []


def test_the_python_document_reads_as_postgresql_reads_ascii(alice) -> None:
    """For plain ASCII mail PostgreSQL builds the document; the folded text of the same message, as a message
    with accents stores it, must give the same words at the same positions."""
    raw = (
        b"From: Ann Lee <ann.lee@friends.test>\r\nTo: Alice <alice@example.com>\r\nCc: Bob <bob@b.test>\r\n"
        b"Subject: Quarterly report\r\n\r\nQ3 up, see the-attached notes.\r\n"
    )
    message = deliver(alice, raw)
    assert message.search_words == ""
    assert text_index.index_search_documents() == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT search_document::text, to_tsvector('simple', %s)::text FROM mailboxes_message WHERE id = %s",
            [
                " ".join(
                    [
                        message.subject,
                        message.from_name,
                        message.from_address,
                        message.from_address.replace("@", " ").replace(".", " "),
                        message.to_addresses,
                        message.to_addresses.translate(str.maketrans("@.<>", "    ")),
                        message.cc_addresses,
                        message.cc_addresses.translate(str.maketrans("@.<>", "    ")),
                        message.search_text,
                    ]
                ),
                message.pk,
            ],
        )
        stored, built = cursor.fetchone()
    assert stored == built
    for word in ("'ann.lee@friends.test'", "'friends'", "'bob@b.test'"):
        assert word in stored


def test_every_writer_stores_the_folded_words(alice, found) -> None:
    from mailboxes import actions
    from tests.webmail_support import make_raw

    appended = actions.append(alice, folder(alice, Role.SENT).pk, make_raw(to="x@remote.test", subject="Déjà vu"))
    actions.copy(alice, appended.mailbox_id, [appended.uid], folder(alice, Role.ARCHIVE).pk)
    assert found("deja") == ["Déjà vu", "Déjà vu"]
    assert all(m.search_words.startswith("deja vu") for m in Message.objects.filter(subject="Déjà vu"))


def test_filename_finds_names_and_types_and_long_lists_still_deliver(alice, found) -> None:
    deliver(alice, subject="Scans", attachments=[("Rapport été.pdf", "application/pdf", b"%PDF")])
    # Names that do not compress: without the cut, the index entry would not fit and delivery would fail.
    names = [(f"appendices {secrets.token_hex(40)}.xlsx", "application/octet-stream", b"x") for _ in range(40)]
    many = deliver(alice, subject="Many", attachments=names)
    assert found("filename:rapport") == ["Scans"]
    assert found("filename:été") == ["Scans"]
    assert found("filename:pdf") == ["Scans"]  # the type counts too
    assert found("filename:appendices") == ["Many"]
    assert found("filename:missing") == []
    # Cut to what the message_attachments index can hold; the message itself is stored whole.
    assert len(many.attachment_names) == 500
    assert many.has_attachments


def document(message: Message) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_document::text FROM mailboxes_message WHERE id = %s", [message.pk])
        return cursor.fetchone()[0]


def test_a_message_is_found_before_and_after_its_document_is_written(alice, found) -> None:
    """Delivery leaves the document to the indexing task; until it runs, a search computes it, with the same
    words, and a COPY takes the document along (or its absence) instead of computing it again."""
    from mailboxes import actions

    first = deliver(alice, subject="Budget", text="The quarterly numbers for the harbour project.")
    assert document(first) is None
    assert found("harbour") == ["Budget"]
    assert found("harbour -quarterly") == []
    copied_unindexed = actions.copy(alice, first.mailbox_id, [first.uid], folder(alice, Role.ARCHIVE).pk)

    assert text_index.index_search_documents() == 2
    assert text_index.index_search_documents() == 0
    assert document(first) is not None
    assert "'harbour'" in document(first)
    assert found("harbour") == ["Budget", "Budget"]

    [(_, archived_uid)] = actions.copy(alice, first.mailbox_id, [first.uid], folder(alice, Role.ARCHIVE).pk)
    archived = Message.objects.get(mailbox=folder(alice, Role.ARCHIVE), uid=archived_uid)
    assert document(archived) == document(first)
    assert copied_unindexed
    assert found("harbour") == ["Budget", "Budget", "Budget"]
    assert text_index.index_search_documents() == 0
