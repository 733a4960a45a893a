"""Base subject for grouping a conversation (RFC 5256 2.1)."""

from __future__ import annotations

import re

from mailcore.headers import decode_words

# RFC 5256 5 ABNF: subj-blob = "[" *BLOBCHAR "]" *WSP, where BLOBCHAR excludes "[" and "]";
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; subj-leader = (*subj-blob subj-refwd) / WSP.
_BLOB = r"\[[^\[\]]*\][ \t]*"
_LEADER = re.compile(rf"(?:(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:|[ \t])", re.I)
_BLOB_PREFIX = re.compile(_BLOB)
_TRAILER = re.compile(r"(?:\(fwd\)|[ \t])+$", re.I)  # subj-trailer = "(fwd)" / WSP
_WHITESPACE = re.compile(r"\s+")


def base_subject(subject: str) -> str:
    """The RFC 5256 base subject, case-folded so that it can be compared directly."""
    # Step 1: decode encoded words (harmless on already-decoded text) and collapse whitespace to single spaces.
    text = _WHITESPACE.sub(" ", decode_words(subject))
    while True:
        # Step 2: remove trailers such as "(fwd)" and trailing spaces.
        text = _TRAILER.sub("", text)
        # Steps 3-5: remove leaders ("Re:", "Fwd:", "[list] Re:") and a leading [blob] that is not everything.
        while True:
            m = _LEADER.match(text)
            if m is not None:
                text = text[m.end() :]
                continue
            m = _BLOB_PREFIX.match(text)
            if m is not None and text[m.end() :].strip():
                text = text[m.end() :]
                continue
            break
        # Step 6: "[fwd: ...]" wrappers are removed and the whole procedure repeated.
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            continue
        return text.casefold()
