"""vCard in and out (webmail/vcard.py), from the forms address books export."""

from __future__ import annotations

from webmail.vcard import Card, parse, serialize

APPLE_30 = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Lee;Ann;;;\r\nFN:Ann Lee\r\n"
    "item1.EMAIL;type=INTERNET;type=pref:ann@example.org\r\nEMAIL;TYPE=work:ann.lee@work.test\r\nEND:VCARD\r\n"
)
GOOGLE_FOLDED = "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\n  Smith\\, Jr.\nEMAIL:bob@example.com\nEND:VCARD\n"
NO_FN = "BEGIN:VCARD\nVERSION:4.0\nN:Jones;Carol;;;\nEMAIL:mailto:carol@example.net\nEND:VCARD\n"
NO_EMAIL = "BEGIN:VCARD\nVERSION:4.0\nFN:Phone Only\nTEL:+1 555 0100\nEND:VCARD\n"


def test_parse_the_common_exports() -> None:
    assert parse(APPLE_30 + GOOGLE_FOLDED + NO_FN + NO_EMAIL) == [
        Card("Ann Lee", ("ann@example.org", "ann.lee@work.test")),
        Card("Bob Smith, Jr.", ("bob@example.com",)),
        Card("Carol Jones", ("carol@example.net",)),
    ]


def test_serialize_round_trips() -> None:
    cards = [Card("Bob Smith, Jr.; PhD", ("bob@example.com",)), Card("", ("nameless@example.com",))]
    text = serialize(cards)
    assert text.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Bob Smith\\, Jr.\\; PhD\r\nEMAIL:bob@example.com\r\n")
    assert parse(text) == [cards[0], Card("nameless@example.com", ("nameless@example.com",))]


def test_garbage_gives_nothing() -> None:
    assert parse("not a vcard\nEMAIL:x@y.z\n\x00\x01") == []
