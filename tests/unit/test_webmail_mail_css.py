"""<style> sheets of HTML mail rebuilt from the allow-list (webmail/mail_css.py), input by input."""

from __future__ import annotations

import pytest

from webmail.mail_css import clean_stylesheet
from webmail.sanitize import STYLE_PROPERTIES


def clean(css: str, show_images: bool = False) -> str:
    return clean_stylesheet(css, show_images=show_images, properties=STYLE_PROPERTIES).css


@pytest.mark.parametrize(
    ("css", "expected"),
    [
        ("p { color: red }", ".mail-root p { color: red }"),
        ("body { margin: 0 }", ".mail-root { margin: 0 }"),
        ("html body td { padding: 2px }", ".mail-root td { padding: 2px }"),
        ("body.dark { color: #eee }", ".mail-root.dark { color: #eee }"),
        (
            "a:hover, .x > td { color: blue !important }",
            ".mail-root a:hover, .mail-root .x > td { color: blue !important }",
        ),
        (
            "p { width: calc(100% - 2px); color: rgb(1, 2, 3) }",
            ".mail-root p { width: calc(100% - 2px); color: rgb(1, 2, 3) }",
        ),
        (
            "@media (max-width: 600px) { .c { width: 100% } }",
            "@media (max-width: 600px) { .mail-root .c { width: 100% } }",
        ),
        # Dropped: fetches, global definitions, scripts, escapes, unknown properties and functions.
        ("@import url(https://x.test/a.css); p { color: red }", ".mail-root p { color: red }"),
        ("@font-face { font-family: x; src: url(https://x.test/f.woff) }", ""),
        ("@keyframes k { from { color: red } }", ""),
        ("p { color: expression(alert(1)) }", ""),
        ("p { color: var(--x) }", ""),
        ("p { position: fixed; top: 0; color: red }", ".mail-root p { color: red }"),
        ("p { background: \\75rl(https://x.test/a) }", ""),
        ("p { list-style-image: url(https://x.test/a) }", ""),
        ("p { cursor: url(https://x.test/a), auto }", ""),
        ('p { font-family: "</style><script>" }', ""),
        ('div[title="</style>"] { color: red }', ""),
        ("p\\3a x { color: red }", ""),
        ("@media screen { @media print { p { color: red } } }", ""),
        ("p { color: red", ".mail-root p { color: red }"),  # an unclosed block ends with the sheet, as in browsers
    ],
)
def test_table(css: str, expected: str) -> None:
    assert clean(css) == expected


def test_background_urls_wait_for_show_images() -> None:
    css = ".hero { background-image: url(https://cdn.test/h.png); color: red } .x { background: url(javascript:x) }"
    held = clean_stylesheet(css, show_images=False, properties=STYLE_PROPERTIES)
    assert held.css == ".mail-root .hero { color: red }"
    assert held.blocked_images == 1
    assert clean(css, show_images=True) == (
        ".mail-root .hero { background-image: url(https://cdn.test/h.png); color: red }"
    )
