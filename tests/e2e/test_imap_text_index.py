"""SEARCH TEXT and BODY with the trigram index (mailboxes.text_index) give exactly the answers of the scan:
over a real imapd before and after the indexing task runs, with mail delivered after its last batch; against
the slow Python evaluation over generated mailboxes indexed part way; and the index's rows go with their
messages and folders."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imapd import search_keys as k
from imapd import search_sql, store
from mailboxes import actions, tasks, text_index
from mailboxes.actions import text_index as indexing
from mailboxes.models import Account, Mailbox, Message
from mailboxes.text_index import MARKS, TEXTS, candidates
from mailsite.celery import app
from tests.e2e.test_imap_search_property import append, keys, matches, samples
from tests.imap_support import RawClient, Server, deliver, message, start

_counter = itertools.count()
KELVIN = "\u212a"  # lower() makes it "k", upper() leaves it: the index compares upper(), ILIKE lower()
LONG_S = "\u017f"  # upper() makes it "S"
QUERIES = [
    "TEXT err",  # inside "cherry"
    "TEXT ERR",
    "BODY err",
    "TEXT cherry",
    "NOT TEXT cherry",
    "OR TEXT cherry BODY strudel",
    "TEXT ab",  # too short for a trigram: scanned
    "TEXT example.org",  # in an address column and the header bytes
    "TEXT mail.example.net/path",  # inside a URL
    "BODY mail.example.net",
    "TEXT X-Temp",  # a header field without a column: only the header bytes
    "BODY X-Temp",
    'TEXT "100%"',
    "TEXT sure_thing",
    "TEXT sur__thing",  # "_" is no wildcard
    'TEXT "\\\\back"',
    "TEXT SUN",  # matches the long s
    "BODY SUN",
    "TEXT Subject",
]
LITERAL_QUERIES = [("TEXT", f"300 {KELVIN}"), ("BODY", f"{LONG_S}un"), ("TEXT", f"Strudel {LONG_S}")]


def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("this test needs PostgreSQL: set DATABASE_URL or run PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    _needs_postgresql()
    server = start(listeners, make_account)
    yield server
    server.close()


def found(client: RawClient, criteria: str | tuple[str, str]) -> list[int]:
    if isinstance(criteria, tuple):
        key, text = criteria
        raw = text.encode()
        data = client.ok(b"UID SEARCH CHARSET UTF-8 %s {%d+}\r\n%s" % (key.encode(), len(raw), raw))
    else:
        data = client.ok(f"UID SEARCH {criteria}")
    (line,) = [line for line in data.split(b"\r\n") if line.startswith(b"* SEARCH")]
    return [int(n) for n in line.split()[2:]]


def answers(client: RawClient) -> dict[str | tuple[str, str], list[int]]:
    return {query: found(client, query) for query in [*QUERIES, *LITERAL_QUERIES]}


def marks() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT mailbox_id, uid FROM {MARKS}")
        return dict(cursor.fetchall())


def indexed() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT message_id FROM {TEXTS}")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("limit", [text_index.LIMIT, 0])
def test_answers_are_the_same_before_and_after_indexing(server: Server, monkeypatch, limit: int) -> None:
    deliver(message("Pie", "A cherry pie.\r\n"))
    utf8 = {"Content-Type": "text/plain; charset=utf-8", "Content_Transfer_Encoding": "8bit"}
    deliver(message("Cake", f"Strudel {LONG_S}un.\r\n", **utf8))
    deliver(message("Weather", "Cold.\r\n", X_Temp="300 k"))
    deliver(message("Odd", "100% sure_thing \\back\r\n"))
    deliver(message("Link", "See https://mail.example.net/path?q=1 now.\r\n"))
    client = RawClient(server)
    client.ok("SELECT INBOX")
    scanned = answers(client)
    # What the scan answers, so the comparisons below compare something.
    assert scanned["TEXT err"] == scanned["TEXT ERR"] == scanned["BODY err"] == [1]
    assert scanned["TEXT SUN"] == [2]
    assert scanned[("TEXT", f"300 {KELVIN}")] == [3]
    assert scanned["TEXT sur__thing"] == []
    assert scanned["TEXT sure_thing"] == [4]
    assert scanned["TEXT mail.example.net/path"] == [5]
    assert scanned["BODY X-Temp"] == []

    assert tasks.index_text() == 5
    # With no limit every string with a trigram found in the folder reads the index: for the strings it answers
    # exactly (TEXT, ASCII) its rows are the answer, header-only fields, addresses and escapes included.
    monkeypatch.setattr(text_index, "LIMIT", limit)
    inbox = Mailbox.objects.get(account=server.account, role="inbox")
    assert marks() == {inbox.pk: 5}
    assert answers(client) == scanned

    # Delivered after the last batch: above the mark, scanned, found all the same.
    deliver(message("Later", "Another cherry.\r\n", X_Temp="300 k"))
    assert b"* 6 EXISTS" in client.ok("NOOP")  # the session searches the messages it knows of
    later = answers(client)
    assert later["TEXT cherry"] == later["TEXT err"] == [1, 6]
    assert later["NOT TEXT cherry"] == [2, 3, 4, 5]
    assert later[("TEXT", f"300 {KELVIN}")] == [3, 6]
    assert {query: [uid for uid in uids if uid != 6] for query, uids in later.items()} == scanned
    assert tasks.index_text() == 1
    assert marks() == {inbox.pk: 6}
    assert answers(client) == later


def test_candidates_are_the_index_matches_and_the_messages_above_the_mark(make_account, monkeypatch) -> None:
    _needs_postgresql()
    account = make_account("cand@example.test")
    folder = actions.create_mailbox(account, "cand")
    assert candidates(folder.pk, "cherry", folder_size=5, answers=False) is None  # not indexed yet: the scan
    for body in ("cherry", "apple", "Cherry", "merry"):
        actions.append(account, folder.pk, message(body.title(), f"{body}\r\n"), flags=[])
    other = make_account("other@example.test")
    other_folder = actions.create_mailbox(other, "cand")
    for _ in range(3):
        actions.append(other, other_folder.pk, message("Berry", "berry\r\n"), flags=[])
    assert tasks.index_text() == 7
    actions.append(account, folder.pk, message("Fig", "fig\r\n"), flags=[])
    ids = dict(Message.objects.filter(mailbox=folder).values_list("uid", "id"))
    found = candidates(folder.pk, "erry", folder_size=5, answers=False)
    assert found is not None
    assert sorted(found.ids) == [ids[1], ids[3], ids[4]]
    assert found.mark == 4
    assert candidates(folder.pk, "er", folder_size=5, answers=False) is None  # no trigram: the scan
    assert candidates(folder.pk, "e.r-y", folder_size=5, answers=False) is None
    assert candidates(folder.pk, f"{KELVIN}iwi", folder_size=5, answers=False) is None  # lower() folds it to ASCII
    assert candidates(folder.pk, f"{LONG_S}un", folder_size=5, answers=False) is not None
    monkeypatch.setattr(text_index, "LIMIT", 3)  # the other account's three do not count
    assert candidates(folder.pk, "erry", folder_size=5, answers=False) is not None
    monkeypatch.setattr(text_index, "LIMIT", 2)
    assert (
        candidates(folder.pk, "erry", folder_size=5, answers=False) is None
    )  # in more messages than the limit: the scan
    assert candidates(folder.pk, "Cherry", folder_size=5, answers=False) is not None
    # When the caller takes the index's answer as it is: the index answers, unless the folder holds less than
    # half of the account's messages (then the index might read far more rows than the scan).
    many = candidates(folder.pk, "erry", folder_size=5, answers=True)
    assert many is not None
    assert many.ids is None
    assert many.mark == 4
    assert many.account_id == account.pk
    for number in range(6):
        actions.append(account, actions.create_mailbox(account, f"more{number}").pk, message("More"), flags=[])
    assert candidates(folder.pk, "erry", folder_size=5, answers=True) is None


def test_batches_are_bounded_and_rows_go_with_their_messages(make_account) -> None:
    _needs_postgresql()
    account = make_account("batch@example.test")
    folder = actions.create_mailbox(account, "batch")
    for number in range(5):
        actions.append(account, folder.pk, message(f"Note {number}"), flags=["\\Deleted"] if number < 2 else [])
    assert indexing.index_text(batch=2) == 2
    assert marks() == {folder.pk: 2}
    assert indexing.index_text(batch=2) == 2
    assert indexing.index_text(batch=2) == 1
    assert marks() == {folder.pk: 5}
    assert indexing.index_text(batch=2) == 0
    assert actions.expunge(account, folder.pk) == [1, 2]
    assert indexed() == set(Message.objects.filter(mailbox=folder).values_list("id", flat=True))
    actions.delete_mailbox(account, folder.pk)
    assert indexed() == set()
    assert marks() == {}


def test_a_folder_emptied_at_its_end_has_its_mark_raised(make_account) -> None:
    _needs_postgresql()
    account = make_account("tail@example.test")
    folder = actions.create_mailbox(account, "tail")
    for number in range(3):
        actions.append(account, folder.pk, message(f"Tail {number}"), flags=["\\Deleted"] if number else [])
    actions.expunge(account, folder.pk)
    assert tasks.index_text() == 1
    assert marks() == {folder.pk: 3}


def test_celery_beat_runs_the_indexing_task() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["text-index"]
    assert entry["task"] == tasks.index_text.name
    assert entry["task"] in app.tasks
    assert entry["schedule"] <= 60


@pytest.fixture
def account(db, make_account) -> Account:
    _needs_postgresql()
    return make_account("tprop@example.test")


text_keys = st.one_of(
    st.builds(k.Text, st.sampled_from(["err", "APPLE", "bob@", "About", "zzz", "an", "ple ban", "example.org"])),
    st.builds(k.Body, st.sampled_from(["err", "Cherry", "e b", "zzz", "date ELDER", "ate"])),
)
mixed_keys = st.one_of(text_keys, keys, st.builds(k.Not, text_keys), st.builds(k.Or, text_keys, keys))


def assert_searches_match(folder_id: int, mailbox: list, queries: list) -> None:
    """Each search of the folder (holding `mailbox`, UIDs from 1) finds what the Python evaluation finds."""
    uids = list(range(1, len(mailbox) + 1))
    context = search_sql.Context(folder_id, uids, set())
    for key in queries:
        got, _ = store.search(context, key, uids[-1])
        expected = [uid for uid, sample in zip(uids, mailbox, strict=True) if matches(key, sample, uid, uids[-1])]
        assert got == expected, key


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mailbox=st.lists(samples, min_size=1, max_size=8),
    split=st.integers(0, 8),
    batch=st.integers(1, 3),
    queries=st.lists(mixed_keys, min_size=1, max_size=5),
)
def test_search_indexed_part_way_equals_the_python_evaluation(
    account: Account, mailbox: list, split: int, batch: int, queries: list
) -> None:
    tasks.index_text()  # the folders of earlier examples: the batch below is then this folder's
    folder = actions.create_mailbox(account, f"tprop{next(_counter)}")
    for number, sample in enumerate(mailbox):
        if number == split:
            indexing.index_text(batch=batch)  # one bounded batch: the folder may be indexed only part way
        append(account, folder.pk, sample)
    assert_searches_match(folder.pk, mailbox, queries)


def test_a_string_in_many_messages_is_answered_by_the_index_alone(make_account, monkeypatch) -> None:
    _needs_postgresql()
    account = make_account("many@example.test")
    folder = actions.create_mailbox(account, "many")
    other = actions.create_mailbox(account, "other")
    for number in range(4):
        actions.append(account, folder.pk, message(f"Cherry {number}", "cherry pie\r\n", X_Tag="ripe"), flags=[])
    actions.append(account, folder.pk, message("Plum", "plum\r\n"), flags=[])
    actions.append(account, other.pk, message("Cherry elsewhere", "cherry\r\n"), flags=[])
    assert tasks.index_text() == 6
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT text FROM {TEXTS} WHERE account_id = %s", [account.pk])
        stored = [text for (text,) in cursor.fetchall()]
    assert len(stored) == 6
    assert all("CHERRY" in text or "PLUM" in text for text in stored)
    assert all(text == text.upper() for text in stored), "stored upper-cased: a search calls upper() on no row"
    actions.append(account, folder.pk, message("Late", "a cherry\r\n"), flags=[])  # above the mark
    actions.move(account, other.pk, [1], folder.pk)  # indexed in the other folder, now UID 7 here
    monkeypatch.setattr(text_index, "LIMIT", 2)
    uids = list(range(1, 8))
    context = search_sql.Context(folder.pk, uids, set())
    for text, expected in [("CHERRY", [1, 2, 3, 4, 6, 7]), ("ripe", [1, 2, 3, 4]), ("x-tag: r", [1, 2, 3, 4])]:
        with CaptureQueriesContext(connection) as queries:
            got, _ = store.search(context, k.Text(text), uids[-1])
        assert got == expected, text
        assert any("UNION ALL" in q["sql"] for q in queries.captured_queries), "the index answered"
    # BODY is not what the index holds (it holds the header too), and a line break could join two columns:
    # those are compared message by message, as before.
    for key, expected in [(k.Body("ripe"), []), (k.Text("pie\nx"), [])]:
        with CaptureQueriesContext(connection) as queries:
            got, _ = store.search(context, key, uids[-1])
        assert got == expected
        assert not any("UNION ALL" in q["sql"] for q in queries.captured_queries)


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mailbox=st.lists(samples, min_size=1, max_size=8),
    split=st.integers(0, 8),
    queries=st.lists(mixed_keys, min_size=1, max_size=5),
)
def test_search_answered_by_the_index_equals_the_python_evaluation(
    db, make_account, monkeypatch, mailbox: list, split: int, queries: list
) -> None:
    _needs_postgresql()
    monkeypatch.setattr(text_index, "LIMIT", 0)  # any string found, in a folder with all of the account's mail
    account = make_account(f"exact{next(_counter)}@example.test")
    folder = actions.create_mailbox(account, "exact")
    for number, sample in enumerate(mailbox):
        if number == split:
            tasks.index_text()  # the messages appended from here on are above the folder's mark
        append(account, folder.pk, sample)
    assert_searches_match(folder.pk, mailbox, queries)
