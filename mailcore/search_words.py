"""Text as the full-text index reads it: case and Latin accents folded, CJK split into overlapping bigrams.

PostgreSQL's 'simple' text-search parser splits words at spaces and punctuation and only lowercases them, so
"Café" is not found by "cafe", and a Chinese or Japanese sentence (written without spaces) is one long word that
no shorter query finds. `fold` turns text into what the index should see, in Python, when a message is stored;
queries go through the same function, so both sides agree without the `unaccent` extension or a trigram index
over every body (each of which would cost every delivery):

- case folded (`str.casefold`: "Straße" becomes "strasse"), compatibility forms unified (NFKD: full-width
  letters, ligatures, half-width katakana), and the combining marks of Latin, Greek and Cyrillic letters
  removed, as `unaccent` does; letters with no decomposition ("ø", "ł", "æ") mapped by hand. Marks of other
  scripts stay: the Japanese voicing mark changes a word ("が" is not "か").
- a run of Han, kana or Hangul becomes its overlapping bigrams in place ("東京都" becomes "東京 京都", as
  Lucene's CJK analyzer does), so a word of two or more characters inside a sentence is a phrase of bigrams
  there. Single characters (one-character words are common in Chinese) are listed once each at the very end of
  the document, where they add no position between the bigrams and phrases across runs still match.
"""

from __future__ import annotations

import operator
import re
import unicodedata

# Combining Diacritical Marks and their supplements and extensions: the accents of Latin, Greek and Cyrillic.
_MARK = "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
# A run written "[set][set]*", not "[set]+": `re` skips ahead to a character of a leading set at C speed, but tries
# the whole pattern at every position when it starts with a repetition (half as fast over mostly-ASCII text).
_ACCENTS = re.compile(f"{_MARK}{_MARK}*")
# Letters that are not a base letter plus a mark (so NFKD leaves them), written as unaccent writes them.
_LETTERS = {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ŧ": "t", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}  # noqa: RUF001
# Han (with extensions and compatibility ideographs), the iteration mark, hiragana, katakana and Hangul syllables.
_CJK = (
    "\u3005\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0002ebef\U00030000-\U0003134f"
)
_CJK_RUN = re.compile(f"([{_CJK}][{_CJK}]*)")  # captured, so that a split gives text and runs alternately
_QUERY_CJK_RUN = re.compile(f"(-?)([{_CJK}]+)")  # with the minus of an exclusion
# Any letter or digit outside ASCII: text without one is indexed as PostgreSQL reads it, and nothing needs folding.
_NON_ASCII_LETTER = re.compile(r"[^\W_\x00-\x7f]")


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    # NFC recomposes what must stay whole: Hangul syllables, and kana with their voicing marks.
    composed = unicodedata.normalize("NFC", _ACCENTS.sub("", decomposed))
    if composed.isascii():  # known without a look at the characters: no letter to map
        return composed
    # Each looked for and replaced at C speed: str.translate looks up every character (3 ms for 48,000 of CJK text),
    # and a substitution calls back for every one found. No replacement holds a letter of the table.
    for letter, plain in _LETTERS.items():
        if letter in composed:
            composed = composed.replace(letter, plain)
    return composed


def _bigrams(run: str) -> str:
    return " ".join(map(operator.add, run, run[1:])) if len(run) > 1 else run


def needs_folding(text: str) -> bool:
    """Whether `text` reads differently folded: it has a letter or digit beyond ASCII."""
    return not text.isascii() and _NON_ASCII_LETTER.search(text) is not None


def fold(text: str) -> str:
    """The document text the index is built from (see the module docstring)."""
    folded = _folded(text)
    if folded.isascii():  # no CJK run to split: known without reading the characters
        return folded
    pieces = _CJK_RUN.split(folded)
    singles: dict[str, None] = {}
    for index in range(1, len(pieces), 2):
        run = pieces[index]
        if len(run) > 1:
            singles.update(dict.fromkeys(run))
        pieces[index] = f" {_bigrams(run)} "
    text = "".join(pieces)
    return f"{text} {' '.join(singles)}" if singles else text


def fold_query(text: str) -> str:
    """A web-search query (words, "phrases", -exclusions, or) folded as documents are.

    A run of CJK characters becomes the phrase of its bigrams: inside a quoted phrase it is part of it, outside
    it is quoted, so "東京都" must appear as written, not merely its two bigrams somewhere.
    """
    pieces = _folded(text).split('"')
    for index, piece in enumerate(pieces):
        if index % 2:
            pieces[index] = _CJK_RUN.sub(lambda match: f" {_bigrams(match[0])} ", piece)
        else:
            pieces[index] = _QUERY_CJK_RUN.sub(lambda match: f' {match[1]}"{_bigrams(match[2])}" ', piece)
    return '"'.join(pieces)
