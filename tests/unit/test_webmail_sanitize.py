"""The HTML sanitiser, plain-text links and address fields, without a database."""

from __future__ import annotations

import pytest

from webmail import sanitize
from webmail.addresses import AddressError, flatten, format_address, parse_field


def clean(markup: str, show_images: bool = False) -> sanitize.CleanResult:
    return sanitize.clean(
        markup, show_images=show_images, inline=lambda cid: ("image/png", b"PNG") if cid == "a@b" else None
    )


@pytest.mark.parametrize(
    "markup",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        "<svg><script>alert(1)</script></svg>",
        '<meta http-equiv="refresh" content="0;url=https://evil.test/">',
        '<base href="https://evil.test/">',
        '<form action="https://evil.test/"><input name=p></form>',
        '<iframe src="https://evil.test/"></iframe>',
        '<p style="background:url(https://evil.test/x)">x</p>',
        '<p style="width: expression(alert(1))">x</p>',
        '<link rel=stylesheet href="https://evil.test/s.css">',
        "<style>@import 'https://evil.test/s.css';</style>",
    ],
)
def test_hostile_markup_is_removed(markup: str) -> None:
    result = clean(markup).html.lower()
    for needle in ("script", "onerror", "javascript", "evil.test", "expression", "<form", "<iframe", "<meta", "<base"):
        assert needle not in result, (needle, result)


def test_safe_formatting_survives() -> None:
    result = clean('<p style="color: red; background-image: url(x)"><b>bold</b> <a href="https://ok.test/">l</a></p>')
    assert '<p style="color:red">' in result.html or '<p style="color: red">' in result.html
    assert '<a href="https://ok.test/" target="_blank" rel="noopener noreferrer">' in result.html


def test_remote_images_wait_for_show_images_and_cid_images_inline() -> None:
    blocked = clean('<img src="https://t.test/p.gif"><img src="//t.test/q.gif"><img src="cid:a@b">')
    assert blocked.blocked_images == 2
    assert "t.test" not in blocked.html
    assert 'src="data:image/png;base64,UE5H"' in blocked.html
    shown = clean('<img src="https://t.test/p.gif">', show_images=True)
    assert 'src="https://t.test/p.gif"' in shown.html


def test_linkify_escapes_and_links() -> None:
    assert sanitize.linkify("<b> www.x.test/a, https://y.test/?a=1&b=2.") == (
        '&lt;b&gt; <a href="https://www.x.test/a" target="_blank" rel="noopener noreferrer">www.x.test/a</a>, '
        '<a href="https://y.test/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">https://y.test/?a=1&amp;b=2</a>.'
    )


def test_address_fields() -> None:
    parsed = parse_field('"Doe, Jane" <jane@example.com>; bob@example.org', "To")
    assert [a.addr_spec for a in parsed] == ["jane@example.com", "bob@example.org"]
    assert parsed[0].display_name == "Doe, Jane"
    for bad in ("jane", "a@b", "x@-bad.test", "two@@example.com", "a@b.test\nBcc: c@d.test"):
        with pytest.raises(AddressError):
            parse_field(bad, "To")
    assert flatten("hi\r\nBcc: x\u2028y") == "hi Bcc: x y"
    assert format_address("Mallory\nBcc: e@evil.test", "m@example.com") == '"Mallory Bcc: e@evil.test" <m@example.com>'
