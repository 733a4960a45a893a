"""Message bytes as POP3 sends them: CRLF conversion, sizes, byte-stuffing and TOP."""

from __future__ import annotations

import pytest

from mailcore.crlf import crlf_size
from pop3d.messages import multiline, to_crlf, top


@pytest.mark.parametrize(
    ("raw", "crlf"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\r\nb\nc", b"a\r\nb\r\nc"),
        (b"\n", b"\r\n"),
        (b"a\rb\r\n", b"a\rb\r\n"),  # a lone CR is not a line ending; it is sent as stored
        (b"", b""),
    ],
)
def test_crlf_conversion_and_size(raw: bytes, crlf: bytes) -> None:
    assert to_crlf(raw) == crlf
    assert crlf_size(raw) == len(crlf)


def test_already_crlf_is_not_copied() -> None:
    raw = b"x\r\n" * 10
    assert to_crlf(raw) is raw


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".a\r\n", b"..a\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n..b\r\n", b"a\r\n...b\r\n.\r\n"),
        (b"no final line end", b"no final line end\r\n.\r\n"),
        (b"", b".\r\n"),
        (b"a.\r\n", b"a.\r\n.\r\n"),
        (b"a\n.b\r\n", b"a\n.b\r\n.\r\n"),  # a bare LF is no line end to stuff after (data is CRLF first)
        (b"a\r\n.b\n.c\r\n", b"a\r\n..b\n.c\r\n.\r\n"),
    ],
)
def test_multiline(data: bytes, wire: bytes) -> None:
    assert multiline(data) == wire


@pytest.mark.parametrize(
    ("data", "lines", "head"),
    [
        (b"A: 1\r\n\r\nl1\r\nl2\r\n", 0, b"A: 1\r\n\r\n"),
        (b"A: 1\r\n\r\nl1\r\nl2\r\n", 1, b"A: 1\r\n\r\nl1\r\n"),
        (b"A: 1\r\n\r\nl1\r\nl2\r\n", 2, b"A: 1\r\n\r\nl1\r\nl2\r\n"),
        (b"A: 1\r\n\r\nl1\r\nl2", 5, b"A: 1\r\n\r\nl1\r\nl2"),
        (b"A: 1\r\nB: 2\r\n", 3, b"A: 1\r\nB: 2\r\n"),  # no blank line: all header
        (b"\r\nbody\r\n", 0, b"\r\n"),  # no header fields
        (b"\r\nbody\r\n", 1, b"\r\nbody\r\n"),
    ],
)
def test_top(data: bytes, lines: int, head: bytes) -> None:
    assert top(data, lines) == head
