"""DKIM signature verification (RFC 6376 3 and 6, RFC 8301, RFC 8463) over the received bytes; no DNS, no Django.

The message is split into header fields once, each body canonicalisation is made and hashed once for all of its
signatures, only the signed fields are canonicalised, and each distinct key record is parsed once. Signatures
are checked by `cryptography` (OpenSSL): RSA PKCS#1 v1.5 with SHA-256, and Ed25519 over SHA-256 (RFC 8463 3).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from mailcore.fields import header_end

MIN_RSA_BITS = 1024  # RFC 8301 3.2: smaller keys MUST NOT be considered valid
CLOCK_SKEW = 3600  # seconds a signer's clock may be ahead (t=) or our clock behind (x=)

# RFC 6376 3.2: tag-name = ALPHA *ALNUMPUNC; a tag-value's characters are VALCHAR plus folding whitespace.
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TAG_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e\x80-\U0010ffff]*(?:[ \t]+[\x21-\x3a\x3c-\x7e\x80-\U0010ffff]+)*")
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+[ \t]*):([^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)")
_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_DOMAIN = re.compile(r"[^\s()<>\[\]:;@\\,\"/]+")  # letters of any script, but no specials or spaces
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")

# a= values: the key type and hash they need; rsa-sha1 is known but refused (RFC 8301 3.1).
ALGORITHMS = {"rsa-sha256": ("rsa", "sha256"), "ed25519-sha256": ("ed25519", "sha256")}


@dataclass(frozen=True)
class Outcome:
    result: str  # pass, fail, neutral, policy, permerror (temperror is the caller's, from its DNS lookups)
    reason: str = ""


class Unverifiable(Exception):
    """A signature, key record or message that cannot be evaluated: its `result` says how (RFC 8601 2.7.1)."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result


def tag_list(text: str) -> dict[str, str]:
    """RFC 6376 3.2: a tag=value list, folding whitespace removed around names and values; Unverifiable for
    bad syntax or a repeated tag."""
    tags: dict[str, str] = {}
    specs = text.split(";")
    if specs[-1].strip(" \t\r\n") == "":
        specs.pop()  # a trailing ";" is allowed
    for spec in specs:
        name, equals, value = spec.partition("=")
        name = name.strip(" \t\r\n")
        value = re.sub(r"\r\n(?=[ \t])", "", value).strip(" \t\r\n")
        if not equals or not _TAG_NAME.fullmatch(name) or not _TAG_VALUE.fullmatch(value):
            raise Unverifiable("permerror", f"malformed tag list near {spec.strip()[:20]!r}")
        if name in tags:
            raise Unverifiable("permerror", f"tag {name}= appears twice")
        tags[name] = value
    return tags


def _base64(value: str) -> bytes:
    packed = re.sub(r"[ \t\r\n]+", "", value).encode("ascii", "replace")
    if not _BASE64.fullmatch(packed):
        raise ValueError("not base64")
    return base64.b64decode(packed, validate=True)


@dataclass(frozen=True)
class PublicKey:
    kind: str  # rsa or ed25519 (k=)
    key: RSAPublicKey | Ed25519PublicKey
    hashes: tuple[str, ...]  # h=, empty for any
    strict_identity: bool  # t=s: i= must name d= itself (RFC 6376 3.6.1)


@functools.lru_cache(maxsize=1024)
def parse_key(record: bytes) -> PublicKey | Unverifiable:
    """A key record (RFC 6376 3.6.1), parsed once per distinct record text: the DNS answer cache keeps the
    record for its TTL, and a changed record is a different text. A problem is returned, not raised, so that
    it is remembered too."""
    try:
        tags = tag_list(record.decode("ascii"))
    except UnicodeDecodeError:
        return Unverifiable("permerror", "key record is not ASCII")
    except Unverifiable as exc:
        return Unverifiable("permerror", f"key record: {exc}")
    if tags.get("v", "DKIM1") != "DKIM1":
        return Unverifiable("permerror", "key record version is not DKIM1")
    services = {s.strip() for s in tags.get("s", "*").split(":")}
    if not services & {"*", "email"}:
        return Unverifiable("permerror", "key is not for email")
    if "p" not in tags:
        return Unverifiable("permerror", "key record has no p=")
    if tags["p"] == "":
        return Unverifiable("permerror", "key revoked")
    kind = tags.get("k", "rsa")
    try:
        data = _base64(tags["p"])
        key = _rsa_key(data) if kind == "rsa" else _ed25519_key(data) if kind == "ed25519" else None
    except (ValueError, TypeError, binascii.Error):
        return Unverifiable("permerror", f"unreadable {kind} key")
    if key is None:
        return Unverifiable("permerror", f"unknown key type k={kind}")
    if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return Unverifiable("permerror", f"key too small ({key.key_size} bits)")
    flags = {f.strip() for f in tags.get("t", "").split(":")}
    accepted = tuple(h.strip() for h in tags["h"].split(":")) if "h" in tags else ()
    return PublicKey(kind, key, accepted, "s" in flags)


def _rsa_key(data: bytes) -> RSAPublicKey:
    try:
        key = serialization.load_der_public_key(data)  # SubjectPublicKeyInfo, as RFC 6376 3.6.1 asks
    except ValueError:
        # Some publish the bare RSAPublicKey (PKCS#1) instead; every common verifier accepts it.
        pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(data) + b"-----END RSA PUBLIC KEY-----\n"
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA key")
    return key


def _ed25519_key(data: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(data)  # RFC 8463 4: p= is the raw 32-octet key


class Message:
    """The received message split once: header fields as (name, value) with the value's folding and final CRLF
    as received, and the body."""

    def __init__(self, raw: bytes) -> None:
        if raw.count(b"\n") != raw.count(b"\r\n"):
            raw = re.sub(rb"\r?\n", b"\r\n", raw)  # bare LF lines are read as CRLF lines, as every verifier does
        end = header_end(raw)
        head = raw[:end] if raw[:end].endswith(b"\r\n") or end == 0 else raw[:end] + b"\r\n"
        self.body = raw[end + 2 :]
        self.fields: list[tuple[bytes, bytes]] = []
        position = 0
        while position < len(head):
            match = _FIELD.match(head, position)
            if match is None:
                raise Unverifiable("permerror", "unparsable header block")
            self.fields.append((match.group(1), match.group(2)))
            position = match.end()
        self._bodies: dict[bool, bytes] = {}

    def signatures(self) -> list[tuple[bytes, bytes]]:
        return [field for field in self.fields if field[0].rstrip(b" \t").lower() == b"dkim-signature"]

    def canonical_body(self, relaxed: bool) -> bytes:
        """RFC 6376 3.4.3 and 3.4.4, made once per algorithm."""
        found = self._bodies.get(relaxed)
        if found is None:
            body = self.body
            if relaxed:
                body = _WSP_RUN.sub(b" ", _TRAILING_WSP.sub(b"\r\n", body))
            body = body.rstrip(b"\r\n")  # the lines of a CRLF body end only in CRLF, so this drops empty lines
            if body:
                body += b"\r\n"
            elif not relaxed:
                body = b"\r\n"  # 3.4.3: an empty body is one CRLF (3.4.4: and nothing when relaxed)
            found = self._bodies[relaxed] = body
        return found

    def signed_fields(self, names: list[str]) -> list[tuple[bytes, bytes]]:
        """RFC 6376 5.4.2: each name takes the next instance from the bottom; a name with none left adds
        nothing."""
        used: dict[str, int] = {}
        chosen = []
        lowered = [name.rstrip(b" \t").lower().decode("ascii") for name, _ in self.fields]
        for name in names:
            start = used.get(name, len(self.fields))
            for index in range(start - 1, -1, -1):
                if lowered[index] == name:
                    chosen.append(self.fields[index])
                    used[name] = index
                    break
            else:
                used[name] = 0
        return chosen


def canonical_field(name: bytes, value: bytes, relaxed: bool) -> bytes:
    """RFC 6376 3.4.1 (simple) and 3.4.2 (relaxed) for one header field."""
    if not relaxed:
        return name + b":" + value
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


def _without_b(value: bytes) -> bytes:
    """The DKIM-Signature value with the b= tag's value and its surrounding whitespace removed (RFC 6376 3.5)."""
    specs = value.split(b";")
    for index, spec in enumerate(specs):
        name, equals, _ = spec.partition(b"=")
        if equals and name.strip(b" \t\r\n") == b"b":
            specs[index] = name + equals
    return b";".join(specs)


KeyLookup = Callable[[str], bytes | None]  # the first key record at a name, None for none; may raise


def verify(message: Message, field: tuple[bytes, bytes], lookup: KeyLookup, *, now: float | None = None) -> Outcome:
    """One DKIM-Signature field of `message` (RFC 6376 6.1). DNS exceptions of `lookup` pass through."""
    try:
        return _verify(message, field, lookup, time.time() if now is None else now)
    except Unverifiable as exc:
        return Outcome(exc.result, str(exc))


def _verify(message: Message, field: tuple[bytes, bytes], lookup: KeyLookup, now: float) -> Outcome:
    try:
        tags = tag_list(field[1].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Unverifiable("permerror", "signature is not UTF-8") from exc
    missing = [name for name in ("v", "a", "b", "bh", "d", "h", "s") if name not in tags]
    if missing:
        raise Unverifiable("permerror", f"missing {', '.join(missing)}=")
    if tags["v"] != "1":
        raise Unverifiable("permerror", f"unknown version v={tags['v']}")
    if tags["a"] == "rsa-sha1":
        raise Unverifiable("policy", "rsa-sha1 is not accepted (RFC 8301)")
    if tags["a"] not in ALGORITHMS:
        raise Unverifiable("permerror", f"unknown algorithm a={tags['a']}")
    kind, _ = ALGORITHMS[tags["a"]]
    header_relaxed, body_relaxed = _canonicalisation(tags.get("c", "simple/simple"))
    domain = tags["d"].lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain) or not _DOMAIN.fullmatch(tags["s"]):
        raise Unverifiable("permerror", "d= or s= is not a domain name")
    names = [name.strip(" \t\r\n").lower() for name in tags["h"].split(":")]
    if "from" not in names:
        raise Unverifiable("permerror", "From is not signed")  # RFC 6376 6.1.1
    identity = tags.get("i", "@" + domain).rpartition("@")[2].lower().rstrip(".")
    if identity != domain and not identity.endswith("." + domain):
        raise Unverifiable("permerror", "i= is not within d=")
    if tags.get("q", "dns/txt") != "dns/txt":
        raise Unverifiable("permerror", f"unknown query method q={tags['q']}")
    _check_times(tags, now)
    length = _length(tags.get("l"))
    try:
        signature, body_hash = _base64(tags["b"]), _base64(tags["bh"])
    except (ValueError, binascii.Error) as exc:
        raise Unverifiable("permerror", "b= or bh= is not base64") from exc

    record = lookup(f"{tags['s']}._domainkey.{domain}")
    if record is None:
        raise Unverifiable("permerror", "no key for signature")
    key = parse_key(record)
    if isinstance(key, Unverifiable):
        raise key
    if key.kind != kind:
        raise Unverifiable("permerror", f"key type {key.kind} does not match a={tags['a']}")
    if key.hashes and "sha256" not in key.hashes:
        raise Unverifiable("permerror", "key does not allow sha256")
    if key.strict_identity and identity != domain:
        raise Unverifiable("permerror", "key requires i= to be d= (t=s)")

    body = message.canonical_body(body_relaxed)
    if length is not None:
        if length > len(body):
            return Outcome("fail", "l= is beyond the end of the body")
        body = body[:length]
    if hashlib.sha256(body).digest() != body_hash:
        return Outcome("fail", "body hash did not verify")

    # RFC 6376 5.4: the signed fields, then this signature without b= and without its final CRLF. One more
    # From than h= names is looked for, so that a From added above a signed one breaks the signature.
    data = b"".join(canonical_field(n, v, header_relaxed) for n, v in message.signed_fields([*names, "from"]))
    own = canonical_field(field[0], _without_b(field[1]), header_relaxed)
    data += own[:-2] if own.endswith(b"\r\n") else own
    try:
        if isinstance(key.key, RSAPublicKey):
            key.key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.key.verify(signature, hashlib.sha256(data).digest())  # RFC 8463 3: Ed25519 signs the hash
    except InvalidSignature:
        return Outcome("fail", "signature did not verify")
    return Outcome("pass")


def _canonicalisation(value: str) -> tuple[bool, bool]:
    header, _, body = value.partition("/")
    algorithms = {"simple": False, "relaxed": True}
    if header not in algorithms or (body or "simple") not in algorithms:
        raise Unverifiable("permerror", f"unknown canonicalization c={value}")
    return algorithms[header], algorithms[body or "simple"]


def _check_times(tags: dict[str, str], now: float) -> None:
    for name in ("t", "x"):
        if name in tags and not tags[name].isdigit():
            raise Unverifiable("permerror", f"{name}= is not a number")
    if "t" in tags and int(tags["t"]) > now + CLOCK_SKEW:
        raise Unverifiable("permerror", "signed in the future")
    if "x" in tags:
        if int(tags["x"]) < now - CLOCK_SKEW:
            raise Unverifiable("permerror", "signature expired")  # RFC 6376 3.5 x=
        if "t" in tags and int(tags["x"]) < int(tags["t"]):
            raise Unverifiable("permerror", "x= is before t=")


def _length(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 76:
        raise Unverifiable("permerror", "l= is not a number")
    return int(value)
