"""Structured log lines: with MAILSITE_LOG_FORMAT=json, one JSON object per line.

Our log lines are already written as an event followed by key=value pairs ("smtp message queue_id=... client=...
result='250 ...'"); the formatter keeps the text in "message", puts the words before the first pair in "event",
and makes each pair a field, so the queue id that ties SMTP, the store and the relay together is a field to
filter on. Fields given as `extra={"fields": {...}}` are added as they are.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# key=value, where the value is a Python repr of a string ('...' or "..."), an <address>, or a word.
_PAIR = re.compile(r"""(?:^|(?<=\s))([a-z][a-z0-9_-]*)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|<[^<>\s]*>|\S*)""")
_STANDARD = ("time", "level", "logger", "process", "pid", "event", "message")


def fields_of(message: str) -> tuple[str, dict[str, str]]:
    """The event (text before the first key=value) and the pairs of a log message."""
    first = _PAIR.search(message)
    event = (message[: first.start()] if first else message).strip()
    pairs: dict[str, str] = {}
    for match in _PAIR.finditer(message):
        key, value = match.groups()
        if value[:1] in ("'", '"'):
            with contextlib.suppress(ValueError, SyntaxError):  # else kept as written
                value = ast.literal_eval(value)
        elif value[:1] == "<":
            value = value[1:-1]
        pairs[key] = value
    return event, pairs


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, pairs = fields_of(message)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "event": event,
            "message": message,
        }
        extra = getattr(record, "fields", None)
        for key, value in {**pairs, **(extra if isinstance(extra, dict) else {})}.items():
            if key not in _STANDARD:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
