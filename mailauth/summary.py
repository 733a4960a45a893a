"""Who a stored message is verified as coming from, in words, for the reading pane.

Only the Authentication-Results field carrying our own authserv-id (MAILSITE_HOSTNAME) is read: the MX removes
incoming fields that claim it before adding its own (RFC 8601 5), and fields of other hosts say what those
hosts found, which nobody here vouches for. A message without our field (sent by a user of this system, or
received before verification was on) has no summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailauth.results import authserv_id
from mailcore.fields import header_end

_AR_FIELD = re.compile(rb"(?im)^authentication-results[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*")
_PROPERTY = re.compile(r'([a-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S+)', re.IGNORECASE)

VERIFIED, PARTLY, UNVERIFIED, TEMPORARY, FAILED = "verified", "partly", "unverified", "temporary", "failed"


@dataclass(frozen=True)
class MethodResult:
    """One resinfo (RFC 8601 2.2): dkim=pass header.d=example.net, with its comments as one text."""

    method: str
    result: str
    properties: dict[str, str]
    comment: str = ""


@dataclass(frozen=True)
class Summary:
    state: str  # verified, partly, unverified, temporary or failed
    headline: str
    lines: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return self.state == FAILED


def ours(raw: bytes, our_id: str) -> list[MethodResult] | None:
    """The method results of the topmost Authentication-Results field with our authserv-id, None without one."""
    for match in _AR_FIELD.finditer(raw, 0, header_end(raw)):
        field = match.group(0)
        if authserv_id(field) == our_id.lower().rstrip("."):
            value = re.sub(r"\r\n(?=[ \t])", "", field.split(b":", 1)[1].decode("utf-8", "replace"))
            return [parsed for item in _split(value)[1:] if (parsed := _method_result(item)) is not None]
    return None


def _split(value: str) -> list[str]:
    """The value cut at each ";" outside comments and quoted strings (RFC 8601 2.2, RFC 5322 3.2.2)."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"' and depth == 0:
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif char == ";" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _method_result(text: str) -> MethodResult | None:
    comments: list[str] = []
    bare: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
            if depth == 1:
                comments.append("")
                continue
        elif char == ")" and depth:
            depth -= 1
            if depth == 0:
                continue
        if depth:
            comments[-1] += char
        else:
            bare.append(char)
    properties = {name.lower(): value.strip('"') for name, value in _PROPERTY.findall("".join(bare))}
    for method in ("dkim", "spf", "dmarc", "arc"):
        if method in properties:
            result = properties.pop(method).lower()
            return MethodResult(method, result, properties, "; ".join(c.strip() for c in comments if c.strip()))
    return None


def summarise(raw: bytes, our_id: str) -> Summary | None:
    results = ours(raw, our_id)
    if results is None:
        return None
    dkim = [r for r in results if r.method == "dkim" and r.result != "none"]
    spf = next((r for r in results if r.method == "spf" and "smtp.mailfrom" in r.properties), None)
    dmarc = [r for r in results if r.method == "dmarc"]
    lines = [_dkim_line(r) for r in dkim] or ["DKIM: the message is not signed."]
    if spf is not None:
        lines.append(_spf_line(spf))
    lines += [_dmarc_line(r) for r in dmarc]
    lines += [_arc_line(r) for r in results if r.method == "arc" and r.result in ("pass", "fail")]
    return Summary(*_verdict(dkim, spf, dmarc), tuple(lines))


def _verdict(dkim: list[MethodResult], spf: MethodResult | None, dmarc: list[MethodResult]) -> tuple[str, str]:
    authors = ", ".join(r.properties.get("header.from", "") for r in dmarc) or "the sender"
    signers = sorted({r.properties.get("header.d", "") for r in dkim if r.result == "pass"} - {""})
    spf_result = spf.result if spf is not None else "none"
    if any(r.result == "fail" for r in dmarc):
        return FAILED, f"Warning: this message failed sender verification. It may not really come from {authors}."
    if dmarc and all(r.result == "pass" for r in dmarc):
        return VERIFIED, f"Verified: this message comes from {authors}."
    if any(r.result == "temperror" for r in dmarc) or (spf_result == "temperror" and not signers):
        return TEMPORARY, "Not verified: a DNS lookup failed while the sender was checked."
    broken = any(r.result == "fail" for r in dkim) or spf_result in ("fail", "softfail")
    if broken and not signers and spf_result != "pass":
        return FAILED, f"Warning: the checks of {authors} failed, and nothing vouches for it."
    if signers:
        return PARTLY, f"Partly verified: signed by {', '.join(signers)}, but {authors} publishes no DMARC policy."
    if spf_result == "pass" and spf is not None:
        domain = spf.properties["smtp.mailfrom"]
        return PARTLY, f"Partly verified: sent by a server {domain} allows, but {authors} publishes no DMARC policy."
    return UNVERIFIED, f"Not verified: {authors} publishes nothing this message could be checked against."


def _dkim_line(r: MethodResult) -> str:
    signer = r.properties.get("header.d") or "an unnamed domain"
    why = f" ({r.comment})" if r.comment else ""
    return {
        "pass": f"DKIM: valid signature by {signer}.",
        "fail": f"DKIM: the signature by {signer} does not match the message{why}.",
        "temperror": f"DKIM: the signature by {signer} could not be checked for now{why}.",
        "policy": f"DKIM: the signature by {signer} is not accepted{why}.",
    }.get(r.result, f"DKIM: the signature by {signer} could not be checked{why}.")


def _spf_line(r: MethodResult) -> str:
    domain = r.properties["smtp.mailfrom"]
    return {
        "pass": f"SPF: {domain} allows the server that sent it.",
        "fail": f"SPF: {domain} does not allow the server that sent it.",
        "softfail": f"SPF: {domain} says the server that sent it is probably not allowed.",
        "neutral": f"SPF: {domain} does not say whether the server that sent it is allowed.",
        "none": f"SPF: {domain} publishes no SPF record.",
        "temperror": f"SPF: {domain} could not be checked for now.",
    }.get(r.result, f"SPF: the SPF record of {domain} is broken.")


def _dmarc_line(r: MethodResult) -> str:
    domain = r.properties.get("header.from", "the author's domain")
    return {
        "pass": f"DMARC: the message passes the policy of {domain}.",
        "fail": f"DMARC: the message fails the policy of {domain}" + (f" ({r.comment})." if r.comment else "."),
        "none": f"DMARC: {domain} publishes no DMARC policy.",
        "temperror": f"DMARC: the policy of {domain} could not be read for now.",
    }.get(r.result, f"DMARC: the policy of {domain} is broken.")


def _arc_line(r: MethodResult) -> str:
    if r.result == "pass":
        return "ARC: the servers that forwarded it vouch for the checks they made."
    return "ARC: the chain of forwarding servers is broken."
