"""FETCH BODYSTRUCTURE and BODY (RFC 3501 7.4.2) over a corpus, compared byte for byte with values checked by hand.

How each value was checked: every part's body was located by reading the file (`cat -A`), from the blank line
ending its header to the line break before the next delimiter (which belongs to the delimiter, RFC 2046
5.1.1), or to the end of the file when the close delimiter is missing; its octets were counted with len() and
its lines as line breaks plus one for a last line without one. A message/rfc822 part's body is the whole
encapsulated message (header and body) and its line count is that message's; parameters that are not ASCII
are written in RFC 2231 extended form as UTF-8 (the RFC 2231 input of rfc2231_filename.eml had iso-8859-1).
The corpus is tests/data/mime (shared with the parser's tests) plus tests/data/imap.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.imap_support import CORPUS, MIME_CORPUS, Server, deliver, start

_PLAIN_ASCII = (
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 70 6 NIL NIL NIL NIL)',
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 70 6)',
)
_LATIN1_8BIT = (
    b'("text" "plain" ("charset" "iso-8859-1") NIL NIL "8BIT" 71 3 NIL NIL NIL NIL)',
    b'("text" "plain" ("charset" "iso-8859-1") NIL NIL "8BIT" 71 3)',
)
_UTF8_HEADERS = (
    b'("text" "plain" ("charset" "utf-8") NIL NIL "8BIT" 44 1 NIL NIL NIL NIL)',
    b'("text" "plain" ("charset" "utf-8") NIL NIL "8BIT" 44 1)',
)
_HTML_ONLY = (
    b'("text" "html" ("charset" "utf-8") NIL NIL "QUOTED-PRINTABLE" 208 3 NIL NIL NIL NIL)',
    b'("text" "html" ("charset" "utf-8") NIL NIL "QUOTED-PRINTABLE" 208 3)',
)
# multipart/mixed > (alternative > (text/plain, related > (text/html, inline cid image)), attachment)
_NESTED_RELATED = (
    b'((("text" "plain" ("charset" "utf-8") NIL NIL "QUOTED-PRINTABLE" 53 1 NIL NIL NIL NIL)'
    b'(("text" "html" ("charset" "utf-8") NIL NIL "7BIT" 81 1 NIL NIL NIL NIL)'
    b'("image" "png" ("name" "logo.png") "<logo@shop>" NIL "BASE64" 76 NIL ("inline" ("filename" "logo.png")) NIL NIL)'
    b' "related" ("boundary" "rel-b" "type" "text/html") NIL NIL NIL)'
    b' "alternative" ("boundary" "alt-b") NIL NIL NIL)'
    b'("application" "pdf" ("name" "receipt.pdf") NIL NIL "BASE64" 80 NIL ("attachment" ("filename" "receipt.pdf"))'
    b' NIL NIL) "mixed" ("boundary" "outer-b") NIL NIL NIL)',
    b'((("text" "plain" ("charset" "utf-8") NIL NIL "QUOTED-PRINTABLE" 53 1)'
    b'(("text" "html" ("charset" "utf-8") NIL NIL "7BIT" 81 1)'
    b'("image" "png" ("name" "logo.png") "<logo@shop>" NIL "BASE64" 76) "related") "alternative")'
    b'("application" "pdf" ("name" "receipt.pdf") NIL NIL "BASE64" 80) "mixed")',
)
_RFC2231_FILENAME = (
    b'(("text" "plain" NIL NIL NIL "7BIT" 13 1 NIL NIL NIL NIL)'
    b'("application" "vnd.ms-excel" ("name*" "utf-8\'\'d%C3%A9penses.xls") NIL NIL "BASE64" 8 NIL'
    b' ("attachment" ("filename*" "utf-8\'\'%E2%82%AC%20rates%20%C3%A9t%C3%A9.xls")) NIL NIL)'
    b' "mixed" ("boundary" "=_2231") NIL NIL NIL)',
    b'(("text" "plain" NIL NIL NIL "7BIT" 13 1)'
    b'("application" "vnd.ms-excel" ("name*" "utf-8\'\'d%C3%A9penses.xls") NIL NIL "BASE64" 8) "mixed")',
)
# RFC 2047 forbids encoded words in parameters; they are passed on as written, for the client to decode.
_ENCODED_WORD_FILENAME = (
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "QUOTED-PRINTABLE" 84 2 NIL NIL NIL NIL)'
    b'("application" "octet-stream" ("name" "=?UTF-8?B?cmFwcG9ydF/DqXTDqS5kb2N4?=") NIL NIL "BASE64" 8 NIL'
    b' ("attachment" ("filename" "=?UTF-8?B?cmFwcG9ydF/DqXTDqS5kb2N4?=")) NIL NIL)'
    b' "mixed" ("boundary" "XYZ") NIL NIL NIL)',
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "QUOTED-PRINTABLE" 84 2)'
    b'("application" "octet-stream" ("name" "=?UTF-8?B?cmFwcG9ydF/DqXTDqS5kb2N4?=") NIL NIL "BASE64" 8) "mixed")',
)
_IVAN = b'(("Ivan" NIL "ivan" "example.com"))'
_FORWARD_ENVELOPE = (
    b'("Fri, 7 Mar 2025 17:00:00 +0000" "=?utf-8?q?Quarterly_numbers?=" '
    + b" ".join([_IVAN, _IVAN, _IVAN])
    + b' (("Grace" NIL "grace" "example.com")) NIL NIL NIL "<q-numbers@example.com>")'
)
_FORWARD_RFC822 = (
    b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 15 1 NIL NIL NIL NIL)'
    b'("message" "rfc822" NIL NIL NIL "7BIT" 399 ' + _FORWARD_ENVELOPE + b' (("text" "plain" NIL NIL NIL "7BIT" 14 1'
    b' NIL NIL NIL NIL)("text" "html" NIL NIL NIL "7BIT" 28 1 NIL NIL NIL NIL) "alternative" ("boundary" "inner-alt")'
    b' NIL NIL NIL) 17 NIL ("inline" NIL) NIL NIL) "mixed" ("boundary" "fwd-outer") NIL NIL NIL)',
    b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 15 1)'
    b'("message" "rfc822" NIL NIL NIL "7BIT" 399 ' + _FORWARD_ENVELOPE + b' (("text" "plain" NIL NIL NIL "7BIT" 14 1)'
    b'("text" "html" NIL NIL NIL "7BIT" 28 1) "alternative") 17) "mixed")',
)
_JUDY = b'(("Judy" NIL "judy" "example.org"))'
_MALLORY = b'(("Mallory" NIL "mallory" "example.org"))'
# Parts of a multipart/digest without Content-Type are message/rfc822 (RFC 2046 5.1.5); the first digest
# message has no Content-Type either, so its body is text/plain; charset=us-ascii (RFC 2045 5.2).
_DIGEST = (
    b'(("text" "plain" NIL NIL NIL "7BIT" 38 1 NIL NIL NIL NIL)'
    b'(("message" "rfc822" NIL NIL NIL "7BIT" 99 ("Mon, 10 Mar 2025 10:00:00 +0000" "Hello" '
    + b" ".join([_JUDY, _JUDY, _JUDY])
    + b' NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL) 5'
    b" NIL NIL NIL NIL)"
    b'("message" "rfc822" NIL NIL NIL "7BIT" 150 ("Mon, 10 Mar 2025 11:00:00 +0000" "Re: Hello" '
    + b" ".join([_MALLORY, _MALLORY, _MALLORY])
    + b' NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL) 6'
    b' NIL NIL NIL NIL) "digest" ("boundary" "digest-inner") NIL NIL NIL) "mixed" ("boundary" "digest-outer")'
    b" NIL NIL NIL)",
    b'(("text" "plain" NIL NIL NIL "7BIT" 38 1)'
    b'(("message" "rfc822" NIL NIL NIL "7BIT" 99 ("Mon, 10 Mar 2025 10:00:00 +0000" "Hello" '
    + b" ".join([_JUDY, _JUDY, _JUDY])
    + b' NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 11 1) 5)'
    b'("message" "rfc822" NIL NIL NIL "7BIT" 150 ("Mon, 10 Mar 2025 11:00:00 +0000" "Re: Hello" '
    + b" ".join([_MALLORY, _MALLORY, _MALLORY])
    + b' NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 11 1) 6) "digest") "mixed")',
)
# No close delimiter: the last part runs to the end of the message, its final line break included.
_MISSING_FINAL_BOUNDARY = (
    b'(("text" "plain" NIL NIL NIL "7BIT" 11 1 NIL NIL NIL NIL)'
    b'("application" "zip" ("name" "data.zip") NIL NIL "BASE64" 18 NIL NIL NIL NIL) "mixed" ("boundary" "trunc")'
    b" NIL NIL NIL)",
    b'(("text" "plain" NIL NIL NIL "7BIT" 11 1)("application" "zip" ("name" "data.zip") NIL NIL "BASE64" 18) "mixed")',
)
# A single non-text body with every extension field: MD5, disposition, a language list and a location.
_SINGLE_PART_PDF = (
    b'("application" "pdf" ("name" "scan.pdf") "<scan7@example.com>" "Scanned page" "BASE64" 60'
    b' "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "scan.pdf" "size" "24")) ("en" "de")'
    b' "https://example.com/scan.pdf")',
    b'("application" "pdf" ("name" "scan.pdf") "<scan7@example.com>" "Scanned page" "BASE64" 60)',
)
_QP_AND_BASE64 = (
    b'(("text" "plain" ("charset" "iso-8859-1" "format" "flowed") NIL NIL "QUOTED-PRINTABLE" 77 3 NIL NIL NIL NIL)'
    b'("text" "html" ("charset" "utf-8") NIL NIL "BASE64" 50 1 NIL NIL NIL NIL) "alternative" ("boundary" "enc")'
    b' NIL "fr" NIL)',
    b'(("text" "plain" ("charset" "iso-8859-1" "format" "flowed") NIL NIL "QUOTED-PRINTABLE" 77 3)'
    b'("text" "html" ("charset" "utf-8") NIL NIL "BASE64" 50 1) "alternative")',
)

EXPECTED = [
    (MIME_CORPUS / "plain_ascii.eml", *_PLAIN_ASCII),
    (MIME_CORPUS / "latin1_8bit.eml", *_LATIN1_8BIT),
    (MIME_CORPUS / "utf8_headers.eml", *_UTF8_HEADERS),
    (MIME_CORPUS / "html_only.eml", *_HTML_ONLY),
    (MIME_CORPUS / "nested_related.eml", *_NESTED_RELATED),
    (MIME_CORPUS / "rfc2231_filename.eml", *_RFC2231_FILENAME),
    (MIME_CORPUS / "encoded_word_filename.eml", *_ENCODED_WORD_FILENAME),
    (MIME_CORPUS / "forward_rfc822.eml", *_FORWARD_RFC822),
    (MIME_CORPUS / "digest.eml", *_DIGEST),
    (MIME_CORPUS / "missing_final_boundary.eml", *_MISSING_FINAL_BOUNDARY),
    (CORPUS / "single_part_pdf.eml", *_SINGLE_PART_PDF),
    (CORPUS / "qp_and_base64.eml", *_QP_AND_BASE64),
]


@pytest.fixture
def server(listeners, make_account) -> Iterator[Server]:
    server = start(listeners, make_account)
    yield server
    server.close()


def test_bodystructure_and_body_of_the_corpus(server: Server) -> None:
    for path, *_ in EXPECTED:
        deliver(path.read_bytes())
    client = server.client()
    client.select("INBOX", readonly=True)
    typ, data = client.fetch(f"1:{len(EXPECTED)}", "(BODYSTRUCTURE BODY)")
    assert typ == "OK"
    # No value here needs a literal, so each message's response is one line.
    assert len(data) == len(EXPECTED)
    for seq, ((path, structure, body), line) in enumerate(zip(EXPECTED, data, strict=True), start=1):
        assert line == b"%d (BODYSTRUCTURE %s BODY %s)" % (seq, structure, body), path.name
