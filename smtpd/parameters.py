"""The MAIL and RCPT parameters of DSN (RFC 3461 4) and REQUIRETLS (RFC 8689 3), parsed without I/O.

aiosmtpd knows SIZE, BODY and SMTPUTF8 and refuses every other parameter with 555; these are taken out of the
command first (case kept: xtext is case-sensitive) and the rest is left to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailcore import xtext
from mailcore.dsn import NOTIFY_WHEN

ENVID_LIMIT = 100  # RFC 3461 4.4
ORCPT_LIMIT = 500  # RFC 3461 4.2

# RFC 5321 4.1.1.11 and RFC 3461 4: a parameter we know with a value outside its syntax is 501; one we do not
# know (or a value we do not offer) is 555.
REQUIRETLS_WITHOUT_TLS = "530 5.7.10 REQUIRETLS needs a TLS session"  # RFC 8689 3: only offered over TLS


def _bad(keyword: str, why: str = "syntax") -> str:
    return f"501 5.5.4 Invalid {keyword} parameter ({why})"


@dataclass(frozen=True)
class MailParameters:
    ret: str = ""  # FULL or HDRS (RFC 3461 4.3); empty when not given
    envid: str = ""  # decoded (RFC 3461 4.4)
    require_tls: bool = False  # RFC 8689 3


@dataclass(frozen=True)
class RcptParameters:
    notify: str = ""  # "NEVER" or some of NOTIFY_WHEN joined by commas; empty when not given
    orcpt: str = ""  # "addr-type;address", decoded (RFC 3461 4.2)


def _split(words: list[str], known: tuple[str, ...]) -> tuple[dict[str, str | None], list[str]] | str:
    """Our parameters by upper-case keyword (None: no value), and the other words untouched; a reply for a
    parameter given twice."""
    ours: dict[str, str | None] = {}
    rest: list[str] = []
    for word in words:
        keyword, equals, value = word.partition("=")
        keyword = keyword.upper()
        if keyword not in known:
            rest.append(word)
            continue
        if keyword in ours:
            return _bad(keyword, "given twice")
        ours[keyword] = value if equals else None
    return ours, rest


def mail_parameters(words: list[str], *, tls: bool) -> tuple[MailParameters, list[str]] | str:
    """MAIL's DSN and REQUIRETLS parameters and the words left for aiosmtpd, or the reply refusing them."""
    split = _split(words, ("RET", "ENVID", "REQUIRETLS"))
    if isinstance(split, str):
        return split
    ours, rest = split
    ret = ""
    if "RET" in ours:
        ret = (ours["RET"] or "").upper()
        if ret not in ("FULL", "HDRS"):  # RFC 3461 4.3
            return _bad("RET")
    envid = ""
    if "ENVID" in ours:
        raw = ours["ENVID"]
        decoded = xtext.decode(raw) if raw else None
        if decoded is None:
            return _bad("ENVID", "not xtext of printable US-ASCII")
        if len(raw or "") > ENVID_LIMIT:  # RFC 3461 4.4 limits the parameter's value as sent
            return _bad("ENVID", f"over {ENVID_LIMIT} characters")
        envid = decoded
    require_tls = "REQUIRETLS" in ours
    if require_tls and ours["REQUIRETLS"] is not None:
        return _bad("REQUIRETLS", "takes no value")
    if require_tls and not tls:
        return REQUIRETLS_WITHOUT_TLS
    return MailParameters(ret=ret, envid=envid, require_tls=require_tls), rest


def rcpt_parameters(words: list[str]) -> tuple[RcptParameters, list[str]] | str:
    """RCPT's NOTIFY and ORCPT and the words left for aiosmtpd, or the reply refusing them."""
    split = _split(words, ("NOTIFY", "ORCPT"))
    if isinstance(split, str):
        return split
    ours, rest = split
    notify = ""
    if "NOTIFY" in ours:
        items = [item.upper() for item in (ours["NOTIFY"] or "").split(",")]
        if items == ["NEVER"]:
            notify = "NEVER"
        elif not items or any(item not in NOTIFY_WHEN for item in items) or len(set(items)) != len(items):
            # RFC 3461 4.1: NEVER alone, or a list of SUCCESS, FAILURE and DELAY.
            return _bad("NOTIFY")
        else:
            notify = ",".join(when for when in NOTIFY_WHEN if when in items)
    orcpt = ""
    if "ORCPT" in ours:
        raw = ours["ORCPT"] or ""
        addr_type, semicolon, address = raw.partition(";")
        decoded = xtext.decode(address) if semicolon else None
        if decoded is None or not decoded or not _atom(addr_type):
            return _bad("ORCPT")  # RFC 3461 4.2: addr-type ";" xtext
        if len(raw) > ORCPT_LIMIT:
            return _bad("ORCPT", f"over {ORCPT_LIMIT} characters")
        orcpt = f"{addr_type};{decoded}"
    return RcptParameters(notify=notify, orcpt=orcpt), rest


def _atom(text: str) -> bool:
    # RFC 3461 4.2: addr-type = atom (RFC 5321 4.1.2's Atom).
    return bool(text) and all(char.isascii() and (char.isalnum() or char in "!#$%&'*+-/=?^_`{|}~") for char in text)
