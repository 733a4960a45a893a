"""The built-in junk filter's tokenizer and Robinson-Fisher classification (pure)."""

from __future__ import annotations

from mailauth import bayes

SPAM = b"Subject: Cheap pills\r\nFrom: win@lottery.test\r\n\r\nCheap pills, casino bonus, click now to win money.\r\n"
HAM = b"Subject: Minutes\r\nFrom: bob@work.test\r\n\r\nHere are the minutes of the project meeting, see you.\r\n"


def counts_of(*trained: tuple[bytes, bool]) -> dict[int, tuple[int, int]]:
    counts: dict[int, tuple[int, int]] = {}
    for raw, spam in trained:
        for token in bayes.tokens(raw):
            s, h = counts.get(token, (0, 0))
            counts[token] = (s + spam, h + (not spam))
    return counts


def test_tokens_are_distinct_stable_and_mark_headers():
    assert bayes.tokens(SPAM) == bayes.tokens(SPAM)
    assert len(set(bayes.tokens(SPAM))) == len(bayes.tokens(SPAM))
    # "cheap" in the subject and in the body are two tokens.
    assert len(bayes.tokens(b"Subject: cheap\r\n\r\ncheap\r\n")) == 2


def test_tokens_read_encoded_and_html_parts():
    encoded = (
        b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + __import__("base64").b64encode(b"<b>casino</b> bonus") + b"\r\n"
    )
    plain = b"Subject: x\r\n\r\ncasino bonus\r\n"
    assert bayes.tokens(encoded) == bayes.tokens(plain)


def test_tokens_are_bounded():
    huge = b"Subject: x\r\n\r\n" + b" ".join(b"w%d" % i for i in range(100_000))
    assert len(bayes.tokens(huge)) == bayes.MAX_TOKENS


def test_untrained_accounts_give_no_verdict():
    assert bayes.spamicity({}, bayes.tokens(SPAM), 0, 3) is None
    assert bayes.spamicity({}, bayes.tokens(SPAM), 3, 0) is None


def test_trained_filter_separates_spam_from_ham():
    counts = counts_of((SPAM, True), (HAM, False))
    spammy = b"Subject: Cheap casino\r\n\r\nClick now, cheap pills and casino money.\r\n"
    hammy = b"Subject: Meeting minutes\r\n\r\nThe project meeting minutes are attached.\r\n"
    assert bayes.spamicity(counts, bayes.tokens(spammy), 1, 1) > 0.9
    assert bayes.spamicity(counts, bayes.tokens(hammy), 1, 1) < 0.1
    assert bayes.spamicity(counts, bayes.tokens(b"Subject: zzz\r\n\r\nqqq\r\n"), 1, 1) == 0.5


def test_gtube():
    assert bayes.has_gtube(b"\r\n\r\n" + bayes.GTUBE + b"\r\n")
    assert not bayes.has_gtube(SPAM)
