"""Internationalised domain names: one canonical form to store and compare, the Unicode form to show.

A domain may reach us as U-labels (`müller.test`, from a person or an SMTPUTF8 client) or as A-labels
(`xn--mller-kva.test`, from DNS and most SMTP clients). They are the same domain, so every comparison that
decides where mail goes or who may use an address is made on the A-label form (IDNA 2008 with the UTS #46
mapping, which also folds case and width), and people are shown the U-label form.
"""

from __future__ import annotations

import idna


def ascii_domain(name: str) -> str:
    """The canonical (A-label, lower-case) form of `name`; a name IDNA refuses is returned lower-cased, so it
    compares equal to nothing stored (domains are validated with `valid_domain` before they are stored)."""
    name = name.strip().rstrip(".")
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name.lower()


def valid_domain(name: str) -> bool:
    """A name we can store: labels IDNA 2008 accepts (after UTS #46 mapping), with at least one dot."""
    try:
        encoded = idna.encode(name.strip().rstrip("."), uts46=True)
    except idna.IDNAError:
        return False
    return b"." in encoded and len(encoded) <= 253


def unicode_domain(name: str) -> str:
    """The form people read: U-labels where the A-labels decode, else the name as stored."""
    if "xn--" not in name:
        return name
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name
