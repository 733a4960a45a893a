"""Folding text for the full-text index (mailcore.search_words): accents, case, compatibility forms, CJK bigrams."""

# ruff: noqa: RUF001, RUF003 (look-alike letters, full-width forms and typographic punctuation are what is tested)

from __future__ import annotations

import pytest

from mailcore.search_words import fold, fold_query, needs_folding


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Café crème", "cafe creme"),
        ("NAÏVE Zoë", "naive zoe"),
        ("Straße", "strasse"),
        ("Øresund Łódź Đakovo Æther Œuvre Þing", "oresund lodz dakovo aether oeuvre thing"),
        ("Ἑλλάς Ёлка", "ελλασ елка"),  # Greek and Cyrillic marks go too; casefold makes final sigma σ
        ("ＡＢＣ ﬁne ①", "abc fine 1"),  # full-width letters, ligatures and circled digits: NFKD
        ("plain ascii", "plain ascii"),
    ],
)
def test_latin_greek_cyrillic_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_cjk_runs_become_bigrams_then_each_character_once_at_the_end() -> None:
    assert fold("明日の会議。東京") == " 明日 日の の会 会議 。 東京  明 日 の 会 議 東 京"
    assert fold("a東b") == "a 東 b"  # a lone character stands for itself, in place
    assert fold("안녕하세요") == " 안녕 녕하 하세 세요  안 녕 하 세 요"  # Hangul syllables stay whole


def test_japanese_voicing_marks_and_half_width_kana_are_kept_and_unified() -> None:
    # が is not か: marks outside Latin, Greek and Cyrillic stay; half-width ｶﾞ becomes が.
    assert fold("がか") == " がか  が か"
    assert fold("ｶﾞｷﾞ") == fold("ガギ") == " ガギ  ガ ギ"


@pytest.mark.parametrize(
    ("query", "folded"),
    [
        ("Café", "cafe"),
        ("東京都", ' "東京 京都" '),
        ("-東京都 cafe", ' -"東京 京都"  cafe'),
        ('"会議は東京" Zoë', '" 会議 議は は東 東京 " zoe'),  # inside a phrase, bigrams join it
        ("日", ' "日" '),
        ("or", "or"),
    ],
)
def test_queries_fold_as_documents_do(query: str, folded: str) -> None:
    assert fold_query(query) == folded


@pytest.mark.parametrize(
    ("text", "needed"),
    [("plain", False), ("“quoted” – €5", False), ("café", True), ("東京", True), ("１２", True)],
)
def test_only_letters_beyond_ascii_need_folding(text: str, needed: bool) -> None:
    assert needs_folding(text) is needed
