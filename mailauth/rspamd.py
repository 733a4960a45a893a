"""rspamd over its HTTP API: `/checkv2` at DATA (async, bounded), `/learnspam` and `/learnham` for training.

rspamd answers JSON with a score and an action. It is an optional engine: when it is down, slow or answers
garbage, `check` returns None and the message is delivered unscored (the caller logs it), never refused.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger("mailauth.rspamd")

MAX_RESPONSE = 1024 * 1024  # a /checkv2 answer is a few KiB; more is not rspamd


@dataclass(frozen=True)
class SpamScore:
    score: float
    action: str  # rspamd's action ("no action", "add header", "reject", ...), for the log
    symbols: tuple[str, ...]


class RspamdUnavailable(Exception):
    """rspamd could not be asked or gave no usable answer."""


def target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise RspamdUnavailable(f"not an http:// URL: {url!r}")
    return parts.hostname, parts.port or 80, parts.path.rstrip("/")


def _headers(values: Mapping[str, str | list[str]]) -> bytes:
    lines = []
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            # rspamd's request headers carry envelope facts; CR/LF in them would split the request.
            lines.append(f"{name}: {item.replace(chr(13), ' ').replace(chr(10), ' ')}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace") if lines else b""


def parse_check_reply(status: int, body: bytes) -> SpamScore:
    if status != 200:
        raise RspamdUnavailable(f"HTTP {status}")
    try:
        data = json.loads(body)
        return SpamScore(float(data["score"]), str(data.get("action", "")), tuple(sorted(data.get("symbols", {}))))
    except (ValueError, KeyError, TypeError) as exc:
        raise RspamdUnavailable(f"unreadable answer: {exc}") from exc


def split_response(data: bytes) -> tuple[int, bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise RspamdUnavailable("incomplete HTTP response")
    status_line, *header_lines = head.split(b"\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError) as exc:
        raise RspamdUnavailable("bad HTTP status line") from exc
    if any(line.lower().replace(b" ", b"") == b"transfer-encoding:chunked" for line in header_lines):
        try:
            body = _unchunk(body)
        except ValueError as exc:
            raise RspamdUnavailable("bad chunked encoding") from exc
    return status, body


def _unchunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


async def check(url: str, raw: bytes, envelope: Mapping[str, str | list[str]], *, limit: float) -> SpamScore:
    """POST the message to <url>/checkv2; the whole exchange is bounded by `limit` seconds."""
    host, port, path = target(url)
    request = (
        (
            f"POST {path}/checkv2 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {len(raw)}\r\n"
        ).encode()
        + _headers(envelope)
        + b"\r\n"
    )

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            writer.write(raw)
            await writer.drain()
            data = await reader.read(MAX_RESPONSE + 1)
            while data and len(data) <= MAX_RESPONSE:
                more = await reader.read(MAX_RESPONSE + 1 - len(data))
                if not more:
                    break
                data += more
            return data
        finally:
            writer.close()

    try:
        data = await asyncio.wait_for(exchange(), limit)
    except TimeoutError as exc:
        raise RspamdUnavailable(f"no answer within {limit:g}s") from exc
    except OSError as exc:
        raise RspamdUnavailable(str(exc) or exc.__class__.__name__) from exc
    if len(data) > MAX_RESPONSE:
        raise RspamdUnavailable("answer too large")
    return parse_check_reply(*split_response(data))


def learn(controller_url: str, raw: bytes, *, spam: bool, timeout: float) -> str:
    """Train rspamd (blocking; run from a Celery task). rspamd keeps a learn cache per message, so the same
    message learnt twice as the same class is a no-op, and learnt as the other class is relearnt."""
    host, port, path = target(controller_url)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("POST", f"{path}/{'learnspam' if spam else 'learnham'}", body=raw)
        response = connection.getresponse()
        body = response.read(MAX_RESPONSE)
    except OSError as exc:
        raise RspamdUnavailable(str(exc) or exc.__class__.__name__) from exc
    finally:
        connection.close()
    text = body.decode("utf-8", "replace")
    # 208 (or an error text saying so) means "already learnt as this class": done, as far as we are concerned.
    if response.status == 200 or "already learned" in text:
        return text
    raise RspamdUnavailable(f"HTTP {response.status}: {text[:200]}")
