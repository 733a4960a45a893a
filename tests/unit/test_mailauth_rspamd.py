"""Reading rspamd's HTTP answers (pure): usable scores, and every garbled answer as RspamdUnavailable."""

from __future__ import annotations

import pytest

from mailauth import rspamd

GOOD = b'{"score": 7.5, "action": "add header", "symbols": {"BAYES_SPAM": {}, "GTUBE": {}}}'


def test_a_check_reply_gives_score_action_and_symbols():
    status, body = rspamd.split_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" + GOOD)
    assert rspamd.parse_check_reply(status, body) == rspamd.SpamScore(7.5, "add header", ("BAYES_SPAM", "GTUBE"))


def test_chunked_replies_are_joined():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + GOOD[:5] + b"\r\n"
    chunked += f"{len(GOOD) - 5:x}\r\n".encode() + GOOD[5:] + b"\r\n0\r\n\r\n"
    status, body = rspamd.split_response(chunked)
    assert rspamd.parse_check_reply(status, body).score == 7.5


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"HTTP/1.1 200 OK\r\n",
        b"garbage\r\n\r\n{}",
        b"HTTP/1.1 500 Internal\r\n\r\n" + GOOD,
        b"HTTP/1.1 200 OK\r\n\r\nnot json",
        b"HTTP/1.1 200 OK\r\n\r\n[1, 2]",
        b'HTTP/1.1 200 OK\r\n\r\n{"score": "high"}',
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
    ],
)
def test_garbled_replies_are_unavailable(response):
    with pytest.raises(rspamd.RspamdUnavailable):
        rspamd.parse_check_reply(*rspamd.split_response(response))


def test_only_http_urls():
    with pytest.raises(rspamd.RspamdUnavailable):
        rspamd.target("https://rspamd.test")
    assert rspamd.target("http://127.0.0.1:11333/") == ("127.0.0.1", 11333, "")
