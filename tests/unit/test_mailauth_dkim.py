"""DKIM verification (mailauth.dkim_verify) on signatures made by another implementation (dkimpy's signer) and
on RFC 8463's published example, with the key records served from a table instead of DNS."""

from __future__ import annotations

import base64
import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.canonicalization import CanonicalizationPolicy

from mailauth import dkim_verify
from mailauth.dkim_verify import Message

MESSAGE = (
    b"Received: from relay.sender.test by mx.sender.test; Thu, 3 Dec 2026 08:00:00 +0000\r\n"
    b"From: Carol <carol@sender.test>\r\n"
    b"To: alice@example.com\r\n"
    b"Subject:   Lunch \t plans\r\n"
    b"  folded onto a second line\r\n"
    b"Message-ID: <1@sender.test>\r\n"
    b"\r\n"
    b"Hi Alice,  \r\n"
    b"\r\n"
    b"shall we\t\tmeet at noon?\r\n"
    b"\r\n"
    b"\r\n"
)
SIGNED = [b"from", b"to", b"subject", b"message-id"]


def new_key(bits: int = 2048) -> tuple[bytes, bytes]:
    """A private key in PEM and the key record publishing its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


PEM, RECORD = new_key()
OTHER_PEM, OTHER_RECORD = new_key()


def sign(raw: bytes = MESSAGE, *, c: tuple[bytes, bytes] = (b"relaxed", b"relaxed"), pem: bytes = PEM, **kw) -> bytes:
    return dkim.sign(raw, b"sel", b"sender.test", pem, canonicalize=c, include_headers=SIGNED, **kw) + raw


def results(raw: bytes, records: dict[str, bytes | None] | None = None) -> list[tuple[str, str]]:
    table = {"sel._domainkey.sender.test": RECORD} if records is None else records
    message = Message(raw)
    outcomes = [dkim_verify.verify(message, field, table.get) for field in message.signatures()]
    return [(outcome.result, outcome.reason) for outcome in outcomes]


CANONICALISATIONS = [(h, b) for h in (b"simple", b"relaxed") for b in (b"simple", b"relaxed")]


@pytest.mark.parametrize("c", CANONICALISATIONS)
def test_every_canonicalisation_passes(c):
    assert results(sign(c=c)) == [("pass", "")]


@pytest.mark.parametrize("c", CANONICALISATIONS)
def test_whitespace_changes_in_transit_pass_only_relaxed(c):
    signed = sign(c=c)
    refolded = signed.replace(b"Subject:   Lunch \t plans\r\n  folded", b"Subject: Lunch plans\r\n\tfolded")
    header_relaxed = c[0] == b"relaxed"
    assert results(refolded)[0][0] == ("pass" if header_relaxed else "fail")
    respaced = signed.replace(b"shall we\t\tmeet", b"shall we meet").replace(b"Hi Alice,  \r\n", b"Hi Alice,\r\n")
    body_relaxed = c[1] == b"relaxed"
    assert results(respaced) == [("pass", "")] if body_relaxed else [("fail", "body hash did not verify")]
    # Empty lines at the end of the body never count (RFC 6376 3.4.3, 3.4.4).
    assert results(signed + b"\r\n\r\n") == [("pass", "")]


def test_tampered_body_fails():
    assert results(sign().replace(b"noon", b"nine")) == [("fail", "body hash did not verify")]


def test_tampered_signed_header_fails_and_unsigned_header_does_not_matter():
    signed = sign()
    assert results(signed.replace(b"<1@sender.test>", b"<2@sender.test>")) == [("fail", "signature did not verify")]
    assert results(b"X-Mailer: anything\r\n" + signed) == [("pass", "")]


def test_a_from_added_above_the_signed_one_fails():
    signed = sign()
    forged = signed.replace(b"From: Carol", b"From: ceo@sender.test\r\nFrom: Carol", 1)
    assert results(forged) == [("fail", "signature did not verify")]


def test_wrong_key_fails_and_missing_key_is_permerror():
    signed = sign()
    assert results(signed, {"sel._domainkey.sender.test": OTHER_RECORD}) == [("fail", "signature did not verify")]
    assert results(signed, {}) == [("permerror", "no key for signature")]


def test_body_length_tag_covers_only_that_much_body():
    signed = sign(length=True)
    assert b" l=" in signed or b";l=" in signed
    assert results(signed + b"Appended by a mailing list.\r\n") == [("pass", "")]
    assert results(signed.replace(b"noon", b"nine")) == [("fail", "body hash did not verify")]
    cut = signed.replace(b"shall we\t\tmeet at noon?\r\n", b"")
    assert results(cut) == [("fail", "l= is beyond the end of the body")]


def test_rsa_sha1_is_refused_by_policy():
    # RFC 8301 3.1: verifiers MUST NOT consider rsa-sha1 signatures valid.
    signed = dkim.sign(MESSAGE, b"sel", b"sender.test", PEM, include_headers=SIGNED, signature_algorithm=b"rsa-sha1")
    assert results(signed + MESSAGE) == [("policy", "rsa-sha1 is not accepted (RFC 8301)")]


def test_small_rsa_keys_are_refused():
    # RFC 8301 3.2; the key is refused before any signature is checked, so any 512-bit modulus shows it.
    small = rsa.RSAPublicNumbers(65537, (1 << 511) + 12345).public_key()
    der = small.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    assert results(sign(), {"sel._domainkey.sender.test": record}) == [("permerror", "key too small (512 bits)")]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"v=DKIM1; k=rsa; p=", "key revoked"),
        (RECORD + b"; h=sha1", "key does not allow sha256"),
        (RECORD + b"; s=tlsrpt", "key is not for email"),
        (RECORD.replace(b"k=rsa", b"k=ed25519"), "unreadable ed25519 key"),
        (RECORD.replace(b"k=rsa", b"k=dsa"), "unknown key type k=dsa"),
        (b"v=DKIM2; " + RECORD[9:], "key record version is not DKIM1"),
        (b"v=DKIM1; k=rsa; p=!!!", "unreadable rsa key"),
        (RECORD + b"; k=rsa", "key record: tag k= appears twice"),
    ],
)
def test_unusable_key_records_are_permerror(record, reason):
    assert results(sign(), {"sel._domainkey.sender.test": record}) == [("permerror", reason)]


def test_key_records_are_parsed_once_per_text():
    dkim_verify.parse_key.cache_clear()
    for _ in range(3):
        assert results(sign()) == [("pass", "")]
    assert dkim_verify.parse_key.cache_info().hits >= 2


@pytest.mark.parametrize(
    ("change", "result", "reason"),
    [
        ((rb"h=from : ", b"h="), "permerror", "From is not signed"),
        ((rb"i=@sender.test", b"i=x@elsewhere.test"), "permerror", "i= is not within d="),
        ((rb"a=rsa-sha256", b"a=rsa-sha512"), "permerror", "unknown algorithm a=rsa-sha512"),
        ((rb"v=1", b"v=2"), "permerror", "unknown version v=2"),
        ((rb"c=relaxed/relaxed", b"c=loose/relaxed"), "permerror", "unknown canonicalization c=loose/relaxed"),
        ((rb"d=sender.test", b"d=sender.test; d=other.test"), "permerror", "tag d= appears twice"),
        ((rb"q=dns/txt", b"q=http"), "permerror", "unknown query method q=http"),
        ((rb"s=sel", b"s=sel; x=1000000000"), "permerror", "signature expired"),
        ((rb"t=\d+", b"t=9999999999"), "permerror", "signed in the future"),
        ((rb"s=sel", b"s=sel; l=12x"), "permerror", "l= is not a number"),
        ((rb"bh=", b"bh=*"), "permerror", "b= or bh= is not base64"),
    ],
)
def test_malformed_or_unacceptable_signatures(change, result, reason):
    signed = sign()
    changed = re.sub(change[0], change[1], signed, count=1)
    assert changed != signed
    assert results(changed) == [(result, reason)]


def test_missing_tags_and_garbage():
    assert results(b"DKIM-Signature: v=1; a=rsa-sha256; d=sender.test\r\n" + MESSAGE) == [
        ("permerror", "missing b, bh, h, s=")
    ]
    [(result, _)] = results(b"DKIM-Signature: ;;;=\x01\r\n" + MESSAGE)
    assert result == "permerror"


def test_lf_only_message_verifies_as_crlf():
    assert results(sign().replace(b"\r\n", b"\n")) == [("pass", "")]


@pytest.mark.parametrize(
    "body",
    [b"", b"\r\n", b" \r\n", b"a", b"a  \t", b"a\r\n\r\n\r\n", b" a \t b \r\n\t\r\nc\r\n \r\n", b"\r\n\r\nx"],
)
@pytest.mark.parametrize("relaxed", [False, True])
def test_body_canonicalisation_matches_dkimpy(body, relaxed):
    algorithm = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed" if relaxed else b"simple/simple")
    assert Message(b"From: a@b.test\r\n\r\n" + body).canonical_body(relaxed) == algorithm.canonicalize_body(body)


# RFC 8463 Appendix A: a message signed with Ed25519 and with RSA, and the two key records.
RFC8463 = (
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    b" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    b" date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    b" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    b" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)
RFC8463_KEYS = {
    "brisbane._domainkey.football.example.com": b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "test._domainkey.football.example.com": (
        b"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
        b"J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOT"
        b"IKT+l/K4w3QIDAQAB"
    ),
}


def test_rfc8463_example_ed25519_and_rsa_pass():
    assert results(RFC8463, RFC8463_KEYS) == [("pass", ""), ("pass", "")]


def test_rfc8463_example_tampered_fails_for_both():
    tampered = RFC8463.replace(b"Is dinner ready?", b"Is lunch ready?")
    assert results(tampered, RFC8463_KEYS) == [("fail", "signature did not verify")] * 2


def test_ed25519_signature_checked_against_an_rsa_key_is_permerror():
    keys = {
        **RFC8463_KEYS,
        "brisbane._domainkey.football.example.com": RFC8463_KEYS["test._domainkey.football.example.com"],
    }
    assert results(RFC8463, keys)[0] == ("permerror", "key type rsa does not match a=ed25519-sha256")
