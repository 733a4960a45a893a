"""The fast split of plain MAIL/RCPT paths answers exactly as aiosmtpd's own parser, or leaves the path to it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP

from smtpd.protocol import plain_path


def aiosmtpd_getaddr(arg: str) -> tuple[str | None, str | None]:
    return SMTP._getaddr(SimpleNamespace(local_part_limit=0), arg)


@pytest.mark.parametrize(
    "arg",
    [
        "<alice@example.com>",
        "<alice@example.com> SIZE=1024 BODY=8BITMIME",
        "<alice@example.com> \t NOTIFY=NEVER",
        "<alice@example.com>SIZE=1",
        "<first.last+tag@mail.example.co.uk>",
        "<o'hara!#$%&*/=?^_`{|}~-@example.com>",
        "<a@b>",
        "<alice@localhost>  SMTPUTF8",
        "<x@-odd-.example>",
        "<ALICE@EXAMPLE.COM>",
    ],
)
def test_plain_paths_match_aiosmtpd(arg):
    assert plain_path(arg) is not None
    assert plain_path(arg) == aiosmtpd_getaddr(arg)


@pytest.mark.parametrize(
    "arg",
    [
        "<>",
        "",
        "alice@example.com",  # no brackets: aiosmtpd accepts a bare addr-spec
        " <alice@example.com>",
        '<"quoted local"@example.com>',
        "<alice@[192.0.2.1]>",
        "<alice@example.com (comment)>",
        "<alice@example.com> (comment) SIZE=1",
        "<@relay.example:alice@example.com>",  # source route (RFC 5321 C)
        "<alice..dots@example.com>",
        "<.alice@example.com>",
        "<alice.@example.com>",
        "<alice@example..com>",
        "<jörg@example.com>",
        "<alice@example.com",
        "<alice@exa mple.com>",
        "<alice@>",
        "<@example.com>",
        "<alice\r\n@example.com>",
    ],
)
def test_other_paths_are_left_to_aiosmtpd(arg):
    assert plain_path(arg) is None


def test_a_long_hostile_path_is_refused_quickly():
    assert plain_path("<" + "a." * 250 + "a@" + "b-" * 120) is None
