"""The auto-configuration documents byte by byte, without Django."""

from __future__ import annotations

import pytest

from autoconfig.documents import Service, autodiscover_error, mta_sts_id, mta_sts_policy, thunderbird


def test_mta_sts_policy_bytes() -> None:
    policy = mta_sts_policy("enforce", ["mx1.example.com", "mx2.example.com"], 86400)
    assert policy == (
        b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: mx2.example.com\r\nmax_age: 86400\r\n"
    )
    with pytest.raises(ValueError, match="enforce, testing, none"):
        mta_sts_policy("strict", ["mx"], 1)


def test_mta_sts_id_follows_the_policy() -> None:
    one = mta_sts_id(mta_sts_policy("testing", ["mx"], 1))
    assert one.isalnum()
    assert len(one) == 32
    assert one == mta_sts_id(mta_sts_policy("testing", ["mx"], 1))
    assert one != mta_sts_id(mta_sts_policy("enforce", ["mx"], 1))


def test_thunderbird_escapes_what_it_is_given() -> None:
    document = thunderbird("a&b.test", "mx.<x>.test", [Service("imap", 993, True)])
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<clientConfig version=\"1.1\">")
    assert b"<domain>a&amp;b.test</domain>" in document
    assert b"<hostname>mx.&lt;x&gt;.test</hostname>" in document
    assert b"<socketType>SSL</socketType>" in document


def test_autodiscover_error_bytes() -> None:
    assert autodiscover_error(600, "Invalid Request") == (
        b"<?xml version='1.0' encoding='utf-8'?>\n"
        b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        b'<Response><Error Id="0" Time="00:00:00"><ErrorCode>600</ErrorCode><Message>Invalid Request</Message>'
        b"<DebugData /></Error></Response></Autodiscover>"
    )
