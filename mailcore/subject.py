"""Base subject for grouping conversations (RFC 5256 section 2.1), on an already decoded subject."""

from __future__ import annotations

import re

_BLOB = r"\[[^\[\]]*\]\s*"
# subj-leader: any number of [blob] then "re"/"fw"/"fwd" with optional [blob] and a colon.
_LEADER = re.compile(rf"^\s*(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:\s*", re.IGNORECASE)
_BLOB_LEADER = re.compile(rf"^\s*{_BLOB}")
_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.IGNORECASE)
_FWD_WRAP = re.compile(r"^\[fwd:\s*(.*)\]$", re.IGNORECASE | re.DOTALL)


def base_subject(subject: str) -> str:
    """Strip reply/forward leaders, blobs and (fwd) trailers; collapse white space; case-fold."""
    text = " ".join(subject.split())
    while True:
        previous = text
        text = _TRAILER.sub("", text)
        while True:
            stripped = _LEADER.sub("", text, count=1)
            # A leading [blob] is removed only if something remains after it (RFC 5256 2.1 step 3).
            blob_stripped = _BLOB_LEADER.sub("", stripped, count=1)
            stripped = blob_stripped if blob_stripped.strip() else stripped
            if stripped == text:
                break
            text = stripped
        wrapped = _FWD_WRAP.match(text)
        if wrapped:
            text = wrapped.group(1).strip()
        if text == previous:
            return text.casefold()
