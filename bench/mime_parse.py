"""Throughput of mailcore.mime.parse_message: `python bench/mime_parse.py` prints parses per second.

Cases: a typical 1 KiB plain message, a 100 KiB multipart with a base64 attachment, the tests/data/mime
corpus, and hostile 25 MiB ones (5000 parts, millions of tiny parts, 100 nested levels around one body, and
99 nested levels around lines that all look like delimiters).
"""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailcore.mime import MAX_DEPTH, parse_message  # noqa: E402 (needs the path set above)

HEADER = (
    b"Return-Path: <alice@example.com>\r\n"
    b"Received: from mail.example.com (mail.example.com [192.0.2.1])\r\n"
    b"\tby mx.example.org with ESMTPS id 4Zx1; Tue, 04 Mar 2025 09:15:02 +0000\r\n"
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>, carol@example.org\r\n"
    b"Subject: =?utf-8?q?Lunch_on_Thursday=3F?=\r\n"
    b"Date: Tue, 4 Mar 2025 10:15:00 +0100\r\n"
    b"Message-ID: <20250304091500.1234@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
)


def plain_1k() -> bytes:
    raw = HEADER + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    line = b"Are you free for lunch on Thursday at noon? Let me know.\r\n"
    return raw + line * ((1024 - len(raw)) // len(line) + 1)


def multipart_100k() -> bytes:
    attachment = base64.encodebytes(os.urandom(72 * 1024)).replace(b"\n", b"\r\n")
    return (
        HEADER + b'Content-Type: multipart/mixed; boundary="=_b1"\r\n\r\n'
        b'--=_b1\r\nContent-Type: multipart/alternative; boundary="=_b2"\r\n\r\n'
        b"--=_b2\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + b"Please find the report attached. Caf=C3=A9.\r\n" * 40
        + b"--=_b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + b"<p>Please find the report <b>attached</b>.</p>\r\n" * 40
        + b'--=_b2--\r\n\r\n--=_b1\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
        b'Content-Disposition: attachment; filename="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + attachment
        + b"--=_b1--\r\n"
    )


def many_parts_25m() -> bytes:
    chunk = base64.encodebytes(os.urandom(3800)).replace(b"\n", b"\r\n")  # ~5 KiB per part
    parts = [HEADER + b"Content-Type: multipart/mixed; boundary=sep\r\n\r\n"]
    for i in range(5000):
        parts.append(b"--sep\r\nContent-Type: application/octet-stream; name=f%d.bin\r\n" % i)
        parts.append(b"Content-Transfer-Encoding: base64\r\n\r\n" + chunk)
    parts.append(b"--sep--\r\n")
    return b"".join(parts)


def tiny_parts_25m() -> bytes:
    """2.6 million 10-byte parts: only MAX_PARTS are split out."""
    return b"Content-Type: multipart/mixed; boundary=s\r\n\r\n" + b"--s\r\n\r\nx\r\n" * (2_621_440) + b"--s--\r\n"


def deep_25m() -> bytes:
    head = [HEADER + b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"]
    for i in range(1, MAX_DEPTH):
        head.append(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i))
    head.append(b"--b%d\r\nContent-Type: text/plain\r\n\r\n" % (MAX_DEPTH - 1))
    body = b"All work and no play makes Jack a dull boy.\r\n" * (25 * 1024 * 1024 // 45)
    return b"".join([*head, body, *(b"--b%d--\r\n" % i for i in reversed(range(MAX_DEPTH)))])


def dash_lines_25m() -> bytes:
    """99 nested multiparts around 25 MiB of lines "--": every line is a candidate delimiter of every level."""
    head = [b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"]
    for i in range(1, MAX_DEPTH - 1):
        head.append(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i))
    return b"".join(head) + b"--\r\n" * (25 * 1024 * 1024 // 4)


def rate(messages: list[bytes], seconds: float = 1.0) -> tuple[float, float]:
    """(parses per second, mean milliseconds per parse) over at least `seconds`."""
    count = 0
    start = time.perf_counter()
    while True:
        for raw in messages:
            parse_message(raw)
        count += len(messages)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed, 1000 * elapsed / count


def main() -> None:
    corpus = [p.read_bytes() for p in sorted((ROOT / "tests" / "data" / "mime").glob("*.eml"))]
    cases: list[tuple[str, Callable[[], list[bytes]]]] = [
        ("1 KiB text/plain", lambda: [plain_1k()]),
        ("100 KiB multipart + attachment", lambda: [multipart_100k()]),
        (f"corpus ({len(corpus)} messages)", lambda: corpus),
        ("25 MiB, 5000 parts", lambda: [many_parts_25m()]),
        ("25 MiB, 2.6 million tiny parts", lambda: [tiny_parts_25m()]),
        (f"25 MiB, {MAX_DEPTH} nested levels", lambda: [deep_25m()]),
        (f"25 MiB of '--' lines, {MAX_DEPTH - 1} levels", lambda: [dash_lines_25m()]),
    ]
    for label, build in cases:
        messages = build()
        size = sum(map(len, messages)) / len(messages)
        per_second, ms = rate(messages)
        print(f"{label:34} {size / 1024:10.1f} KiB avg {per_second:10.0f} parses/s {ms:9.3f} ms/parse")


if __name__ == "__main__":
    main()
