"""The JSON log formatter (ops/logs.py): the event, key=value fields, extras and exceptions."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from ops.logs import JsonFormatter, fields_of


@pytest.mark.parametrize(
    ("message", "event", "fields"),
    [
        (
            "smtp message queue_id=3F2A client=192.0.2.1 sender=<a@b.test> recipients=c@d.test,e@d.test size=12 "
            "result='250 2.0.0 Ok: queued as 3F2A'",
            "smtp message",
            {
                "queue_id": "3F2A",
                "client": "192.0.2.1",
                "sender": "a@b.test",
                "recipients": "c@d.test,e@d.test",
                "size": "12",
                "result": "250 2.0.0 Ok: queued as 3F2A",
            },
        ),
        ('smtp message sender=<> result="it\'s"', "smtp message", {"sender": "", "result": "it's"}),
        (
            "pop3 session end listener=pop3 client=::1 user= duration=0.250",
            "pop3 session end",
            {"listener": "pop3", "client": "::1", "user": "", "duration": "0.250"},
        ),
        ("shutting down", "shutting down", {}),
        ("smtp listening on 127.0.0.1:25", "smtp listening on 127.0.0.1:25", {}),
        ("odd reason='unterminated", "odd", {"reason": "'unterminated"}),
    ],
)
def test_fields_of(message: str, event: str, fields: dict[str, str]) -> None:
    assert fields_of(message) == (event, fields)


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("smtpd", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_one_json_object_per_line() -> None:
    line = JsonFormatter().format(record("smtp auth failed client=%s\nlevel=forged", "192.0.2.1"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["event"] == "smtp auth failed"
    assert parsed["client"] == "192.0.2.1"
    assert parsed["level"] == "INFO"  # a pair in the text never overrides the record's own fields
    assert parsed["logger"] == "smtpd"
    assert parsed["time"].endswith("+00:00")


def test_extra_fields_and_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failing = record("relay attempt failed", fields={"queue_id": "ABC", "attempt": 3})
        failing.exc_info = sys.exc_info()
    parsed = json.loads(JsonFormatter().format(failing))
    assert (parsed["queue_id"], parsed["attempt"]) == ("ABC", 3)
    assert "ValueError: boom" in parsed["exception"]
