"""The built-in junk filter's mathematics (pure): tokens of a message and Robinson-Fisher classification.

The method is Gary Robinson's, as SpamBayes and mox use it: each token's spam probability from the account's
counts, shrunk towards 0.5 when it was seen rarely, the most telling tokens combined with Fisher's
chi-square test into one "spamicity" between 0 (ham) and 1 (spam).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from email import message_from_bytes
from email import policy as email_policy

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
MAX_TOKENS = 1500  # distinct tokens per message: enough to classify, bounded work for a huge message
MAX_TEXT = 256 * 1024  # characters of text read per message
MAX_INTERESTING = 150  # tokens combined (SpamBayes' max_discriminators)
STRENGTH = 1.0  # Robinson's s: how strongly an unknown token leans to 0.5
MIN_DEVIATION = 0.1  # tokens with |p - 0.5| below this say nothing

_WORD = re.compile(r"[^\W_][\w'$€.-]{1,30}[^\W_]|[^\W_]{2}", re.UNICODE)
_TAG = re.compile(r"<[^>]{0,2000}>")


def has_gtube(raw: bytes) -> bool:
    """The GTUBE test string (Generic Test for Unsolicited Bulk Email), which every filter treats as spam."""
    return GTUBE in raw


def _words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _words_of(raw: bytes) -> list[str]:
    """Subject and From words (marked as such: "free" in a subject says more than in a body), then the
    words of the text parts, HTML tags left out."""
    message = message_from_bytes(raw, policy=email_policy.default)
    words: list[str] = []
    for name in ("subject", "from"):
        value = message.get(name)
        if value:
            words.extend(f"{name}:{word}" for word in _words(str(value)))
    length = 0
    for part in message.walk():
        if part.get_content_maintype() != "text" or length >= MAX_TEXT:
            continue
        try:
            content = part.get_content()
        except (LookupError, ValueError, AssertionError):  # unknown charset or broken encoding: skip the part
            continue
        if part.get_content_subtype() == "html":
            content = _TAG.sub(" ", content)
        content = content[: MAX_TEXT - length]
        length += len(content)
        words.extend(_words(content))
    return words


def tokens(raw: bytes) -> list[int]:
    """The message's distinct tokens as 64-bit hashes, at most MAX_TOKENS, in a stable order."""
    try:
        words = _words_of(raw)
    except Exception:  # the standard library's parser on hostile input: take the raw bytes' words instead
        words = _words(raw[:MAX_TEXT].decode("utf-8", "replace"))
    found: dict[int, None] = {}
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8", "replace"), digest_size=8).digest()
        found[int.from_bytes(digest, "big", signed=True)] = None
        if len(found) >= MAX_TOKENS:
            break
    return list(found)


def _chi2q(x2: float, freedom: int) -> float:
    """P(chi-square with `freedom` (even) degrees of freedom >= x2)."""
    m = x2 / 2.0
    term = total = math.exp(-m)
    for i in range(1, freedom // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


def token_probability(spam: int, ham: int, spam_messages: int, ham_messages: int) -> float:
    spam_ratio = spam / spam_messages
    ham_ratio = ham / ham_messages
    raw = spam_ratio / (spam_ratio + ham_ratio) if spam_ratio + ham_ratio else 0.5
    seen = spam + ham
    return (STRENGTH * 0.5 + seen * raw) / (STRENGTH + seen)


def spamicity(
    counts: Mapping[int, tuple[int, int]], message_tokens: Iterable[int], spam_messages: int, ham_messages: int
) -> float | None:
    """Between 0 (ham) and 1 (spam); None while the account has not trained both a spam and a ham message."""
    if spam_messages < 1 or ham_messages < 1:
        return None
    probabilities = []
    for token in message_tokens:
        spam, ham = counts.get(token, (0, 0))
        p = token_probability(spam, ham, spam_messages, ham_messages)
        if abs(p - 0.5) >= MIN_DEVIATION:
            probabilities.append(p)
    if not probabilities:
        return 0.5
    probabilities.sort(key=lambda p: -abs(p - 0.5))
    chosen = [min(max(p, 1e-6), 1 - 1e-6) for p in probabilities[:MAX_INTERESTING]]
    n = len(chosen)
    spam_evidence = 1.0 - _chi2q(-2.0 * sum(math.log(1.0 - p) for p in chosen), 2 * n)
    ham_evidence = 1.0 - _chi2q(-2.0 * sum(math.log(p) for p in chosen), 2 * n)
    return (1.0 + spam_evidence - ham_evidence) / 2.0
