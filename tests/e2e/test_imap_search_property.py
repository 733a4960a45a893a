"""SEARCH in SQL (imapd.search_sql) against a slow Python evaluation of the same key tree, over generated
mailboxes and generated keys (hypothesis). Runs on the store only, without a listener."""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imapd import search_keys as k
from imapd import search_sql, store
from imapd.sequence import STAR
from mailboxes import actions
from mailboxes.models import Account, Mailbox

WORDS = ["apple", "Banana", "cherry", "date", "Elder"]
ZONES = ["+0000", "-0500", "+0930", "+1400", "-1100"]
DAY0 = datetime.date(2024, 3, 1)
COLUMNS = ("seen", "answered", "flagged", "deleted", "draft")
_counter = itertools.count()


@dataclass
class Sample:
    subject: str | None  # None: no Subject field
    sender: str
    body: str
    flags: tuple[bool, ...]
    keyword: str | None
    internal: datetime.datetime
    sent_local: datetime.datetime | None  # the Date: header's time, in its own zone
    zone: str

    def raw(self) -> bytes:
        headers = [f"From: {self.sender}@example.org", "To: alice@example.test"]
        if self.subject is not None:
            headers.append(f"Subject: {self.subject}")
        if self.sent_local is not None:
            headers.append("Date: " + self.sent_local.strftime("%a, %d %b %Y %H:%M:%S ") + self.zone)
        return ("\r\n".join(headers) + "\r\n\r\n" + self.body + "\r\n").encode()


samples = st.builds(
    Sample,
    subject=st.one_of(st.none(), st.sampled_from(WORDS).map(lambda w: f"About {w}")),
    sender=st.sampled_from(["ann", "bob", "cyd"]),
    body=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    flags=st.tuples(*[st.booleans()] * 5),
    keyword=st.sampled_from([None, "$Work", "$Home"]),
    internal=st.integers(0, 4 * 48 - 1).map(
        lambda h: datetime.datetime.combine(DAY0, datetime.time(), datetime.UTC) + datetime.timedelta(hours=h / 2)
    ),
    sent_local=st.one_of(
        st.none(),
        st.integers(0, 4 * 24 - 1).map(
            lambda h: datetime.datetime.combine(DAY0, datetime.time()) + datetime.timedelta(hours=h)
        ),
    ),
    zone=st.sampled_from(ZONES),
)
days = st.integers(0, 4).map(lambda n: DAY0 + datetime.timedelta(days=n))
leaves = st.one_of(
    st.just(k.All()),
    st.builds(k.Flag, st.sampled_from(COLUMNS), st.booleans()),
    st.builds(k.Keyword, st.sampled_from(["$Work", "$Home", "\\Seen"])),
    st.builds(k.Header, st.just("subject"), st.sampled_from(["", "about", "APPLE", "an", "zzz"])),
    st.builds(k.Header, st.just("from"), st.sampled_from(["ann", "BOB", "example"])),
    st.builds(k.Body, st.sampled_from(["apple", "CHERRY", "err", "zzz"])),
    st.builds(k.Text, st.sampled_from(["apple", "bob@", "About", "zzz"])),
    st.builds(k.Size, st.booleans(), st.integers(60, 140)),
    st.builds(k.Date, st.booleans(), st.sampled_from(["before", "on", "since"]), days),
    st.builds(
        k.Messages,
        st.lists(st.tuples(st.integers(1, 8), st.sampled_from([1, 3, STAR])), min_size=1, max_size=2).map(
            lambda pairs: tuple((low, low + high if high != STAR else STAR) for low, high in pairs)
        ),
        st.just(True),
    ),
)
keys = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(k.Not, inner),
        st.builds(k.Or, inner, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda parts: k.And(tuple(parts))),
    ),
    max_leaves=6,
)


def sent_day(sample: Sample) -> datetime.date:
    if sample.sent_local is None:
        return sample.internal.date()
    return sample.sent_local.date()


def matches(key: k.Key, sample: Sample, uid: int, highest: int) -> bool:
    """The slow reference: RFC 3501 6.4.4 read literally."""
    if isinstance(key, k.All):
        return True
    if isinstance(key, k.And):
        return all(matches(part, sample, uid, highest) for part in key.keys)
    if isinstance(key, k.Or):
        return matches(key.left, sample, uid, highest) or matches(key.right, sample, uid, highest)
    if isinstance(key, k.Not):
        return not matches(key.key, sample, uid, highest)
    if isinstance(key, k.Flag):
        return sample.flags[COLUMNS.index(key.name)] == key.on
    if isinstance(key, k.Keyword):
        if key.flag == "\\Seen":
            return sample.flags[0]
        return sample.keyword == key.flag
    if isinstance(key, k.Header):
        if key.field == "subject":
            if sample.subject is None:
                return False
            return key.value.lower() in sample.subject.lower()
        return key.value.lower() in f"{sample.sender}@example.org"
    if isinstance(key, k.Body):
        return key.value.lower() in sample.body.lower()
    if isinstance(key, k.Text):
        return key.value.lower() in sample.raw().decode().lower()
    if isinstance(key, k.Size):
        size = len(sample.raw())
        return size > key.octets if key.larger else size < key.octets
    if isinstance(key, k.Date):
        day = sent_day(sample) if key.sent else sample.internal.date()
        return {"before": day < key.day, "on": day == key.day, "since": day >= key.day}[key.relation]
    if isinstance(key, k.Messages):
        # "*" is the highest UID, and n:m is the same set as m:n (RFC 3501 9, seq-range).
        ends = [(low, highest if high == STAR else high) for low, high in key.ranges]
        return any(min(ends_) <= uid <= max(ends_) for ends_ in ends)
    raise AssertionError(key)


@pytest.fixture
def account(db, make_account) -> Account:
    return make_account("prop@example.test")


def append(account: Account, folder_id: int, sample: Sample) -> None:
    """Store `sample` in the folder through IMAP's APPEND action, with its flags and keyword."""
    names = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
    flags = [name for name, on in zip(names, sample.flags, strict=True) if on]
    if sample.keyword:
        flags.append(sample.keyword)
    actions.append(account, folder_id, sample.raw(), flags=flags, internal_date=sample.internal)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mailbox=st.lists(samples, min_size=1, max_size=8), queries=st.lists(keys, min_size=1, max_size=5))
def test_sql_search_equals_the_python_evaluation(account: Account, mailbox: list[Sample], queries) -> None:
    folder = actions.create_mailbox(account, f"prop{next(_counter)}")
    for sample in mailbox:
        append(account, folder.pk, sample)
    uids = list(range(1, len(mailbox) + 1))
    assert Mailbox.objects.get(pk=folder.pk).uidnext == len(mailbox) + 1
    context = search_sql.Context(folder.pk, uids, set())
    for key in queries:
        found, _ = store.search(context, key, uids[-1])
        expected = [uid for uid, sample in zip(uids, mailbox, strict=True) if matches(key, sample, uid, uids[-1])]
        assert found == expected, key
