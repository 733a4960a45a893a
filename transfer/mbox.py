"""mbox in its mboxrd form (RFC 4155; the quoting of qmail's mbox(5)): streaming reader and writer.

Each message starts with a From_ line (`From <envelope sender> <asctime date in UTC>`) and is followed by one
empty line. mboxrd quoting: a line of the message matching `>*From ` gets one more `>` when written and loses
one when read, so the reader can always tell separators from message text and the round trip is exact (mboxo
quotes only `From ` and cannot be undone).

Flags travel in the headers mutt, Dovecot and most mbox readers understand (`Status`, `X-Status`,
`X-Keywords`). The writer puts all three, always and in that order, as the first lines of each message; the
reader takes them off again only in exactly that form, so the message's own bytes come back unchanged even if
they contain headers of those names. Messages from other writers keep their bytes; their flags are read from
those headers or from Thunderbird's `X-Mozilla-Status`. The internal date is the From_ line's date (whole
seconds, like IMAP's INTERNALDATE). Line endings are kept as they are; the reader does not convert them.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import BinaryIO

from transfer.flags import Item, Skipped, normalise

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# A separator is a From_ line with an asctime-like date, optionally a zone before the year (as some writers
# add). The strict date makes an unquoted "From here on..." in a foreign mboxo body stay part of its message.
FROM_LINE = re.compile(
    rb"From (?P<sender>\S*) +(?:"
    + b"|".join(d.encode() for d in _DAYS)
    + rb") +(?P<month>"
    + b"|".join(m.encode() for m in _MONTHS)
    + rb") +(?P<day>\d{1,2}) +(?P<time>\d{1,2}:\d{2}(?::\d{2})?)(?P<zone>(?: +(?:[A-Za-z]{1,5}|[+-]\d{4}))*)"
    rb" +(?P<year>\d{4})\b"
)
_QUOTE_AT = re.compile(rb"^(?=>*From )", re.MULTILINE)  # where a line of the message needs one more ">"
_UNQUOTE = re.compile(rb">+From ")
_READ_CHUNK = 64 * 1024  # one line is read in pieces this long: a 2 GB line never sits in memory at once
_HEADER_END = re.compile(rb"\r?\n\r?\n")


class MboxError(ValueError):
    """The file is not an mbox file at all."""


def from_line(sender: str, date: datetime.datetime | None) -> bytes:
    """The separator line for a message: the envelope sender (MAILER-DAEMON when empty or unusable) and the
    date in UTC, formatted like asctime()."""
    if not sender or any(ch.isspace() for ch in sender):
        sender = "MAILER-DAEMON"
    when = (date or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    stamp = f"{_DAYS[when.weekday()]} {_MONTHS[when.month - 1]} {when.day:2d} {when:%H:%M:%S} {when.year}"
    return b"From " + sender.encode("utf-8") + b" " + stamp.encode("ascii") + b"\n"


def _metadata(flags: list[str], eol: bytes) -> bytes:
    lowered = {flag.lower() for flag in flags}
    status = b"RO" if "\\seen" in lowered else b"O"
    x_status = b"".join(
        letter
        for letter, flag in ((b"A", "\\answered"), (b"F", "\\flagged"), (b"T", "\\draft"), (b"D", "\\deleted"))
        if flag in lowered
    )
    keywords = " ".join(flag for flag in normalise(flags) if not flag.startswith("\\")).encode("utf-8")
    return b"Status: " + status + eol + b"X-Status: " + x_status + eol + b"X-Keywords: " + keywords + eol


def write(out: BinaryIO, item: Item) -> None:
    """Append one message to an mbox stream."""
    raw = item.raw
    first_end = raw.find(b"\n")
    eol = b"\r\n" if first_end > 0 and raw[first_end - 1 : first_end] == b"\r" else b"\n"
    out.write(from_line(item.sender, item.internal_date))
    out.write(_metadata(item.flags, eol))
    out.write(_QUOTE_AT.sub(b">", raw))
    out.write(b"\n")


def _date(match: re.Match[bytes]) -> datetime.datetime | None:
    time_parts = [int(part) for part in match["time"].split(b":")]
    hour, minute, second = [*time_parts, 0][:3]
    zone = datetime.UTC
    for token in match["zone"].split():
        if token[:1] in b"+-" and token[1:].isdigit():
            sign = -1 if token[:1] == b"-" else 1
            zone = datetime.timezone(sign * datetime.timedelta(hours=int(token[1:3]), minutes=int(token[3:5])))
    try:
        return datetime.datetime(
            int(match["year"]),
            _MONTHS.index(match["month"].decode()) + 1,
            int(match["day"]),
            hour,
            minute,
            second,
            tzinfo=zone,
        )
    except ValueError:
        return None


def _header_value(header: bytes, name: bytes) -> bytes | None:
    """The first field `name` of a header block (unfolded value), or None."""
    match = re.search(rb"(?im)^" + re.escape(name) + rb":[ \t]*(.*(?:\r?\n[ \t].*)*)", header)
    return match.group(1).strip() if match else None


_OUR_METADATA = re.compile(rb"Status: [RO]*\r?\nX-Status: [AFTD]*\r?\nX-Keywords: [^\r\n]*\r?\n")


def _flags_of(raw: bytes) -> tuple[bytes, list[str]]:
    """The message without our metadata lines, and its flags."""
    ours = _OUR_METADATA.match(raw)
    header_end = _HEADER_END.search(raw)
    header = raw[: ours.end()] if ours else raw[: header_end.start() if header_end else len(raw)]
    flags: list[str] = []
    status = _header_value(header, b"Status") or b""
    x_status = _header_value(header, b"X-Status") or b""
    if b"R" in status:
        flags.append("\\Seen")
    for letter, flag in ((b"A", "\\Answered"), (b"F", "\\Flagged"), (b"T", "\\Draft"), (b"D", "\\Deleted")):
        if letter in x_status:
            flags.append(flag)
    keywords = _header_value(header, b"X-Keywords") or b""
    flags.extend(word for word in keywords.decode("utf-8", "replace").replace(",", " ").split() if word)
    mozilla = _header_value(header, b"X-Mozilla-Status")
    if not ours and mozilla and re.fullmatch(rb"[0-9A-Fa-f]{4}", mozilla):
        bits = int(mozilla, 16)
        flags.extend(flag for bit, flag in ((1, "\\Seen"), (2, "\\Answered"), (4, "\\Flagged")) if bits & bit)
    return (raw[ours.end() :] if ours else raw), normalise(flags)


def read(stream: BinaryIO, *, max_size: int, name: str = "mbox") -> Iterator[Item | Skipped]:
    """The messages of an mbox stream, one at a time; a message over `max_size` bytes is skipped (and never
    held in memory), reported as `Skipped`. Raises MboxError if the stream does not start with a From_ line."""
    chunks: list[bytes] = []
    size = 0
    separator: re.Match[bytes] | None = None
    offset = 0
    start_offset = 0
    line_start = True

    def finish() -> Item | Skipped:
        where = f"{name} at byte {start_offset}"
        raw = b"".join(chunks) if size <= max_size + 1 else b""
        if raw.endswith(b"\n"):
            raw = raw[:-1]  # the empty line that ends every message
        if size > max_size + 1 or len(raw) > max_size:
            return Skipped(where, f"larger than {max_size} bytes")
        assert separator is not None
        body, flags = _flags_of(raw)
        return Item(body, flags, _date(separator), separator["sender"].decode("utf-8", "replace"))

    while True:
        chunk = stream.readline(_READ_CHUNK)
        if not chunk:
            break
        if line_start and chunk.startswith(b"From "):
            match = FROM_LINE.match(chunk)
            if match:
                if separator is not None:
                    yield finish()
                separator, chunks, size, start_offset = match, [], 0, offset
                offset += len(chunk)
                while not chunk.endswith(b"\n"):  # the rest of an overlong From_ line
                    chunk = stream.readline(_READ_CHUNK)
                    if not chunk:
                        break
                    offset += len(chunk)
                continue
        if separator is None:
            raise MboxError(f"{name} is not an mbox file: it does not begin with a 'From ' line")
        offset += len(chunk)
        if line_start and _UNQUOTE.match(chunk):
            chunk = chunk[1:]
        size += len(chunk)
        if size <= max_size + 1:  # + the empty line after the message
            chunks.append(chunk)
        elif chunks:
            chunks = []
        line_start = chunk.endswith(b"\n")
    if separator is not None:
        yield finish()
