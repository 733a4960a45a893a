"""The webmail's rules written as Sieve, read back, and run."""

from __future__ import annotations

import datetime

from mailcore.mime import parse_message
from sieve.actions import FileInto, Keep, Redirect, Vacation
from sieve.interpreter import Environment, run
from sieve.message import MessageView
from sieve.rules import Rule, Settings, VacationSettings, check, script, settings_of
from sieve.validate import compile_script

RAW = b'From: "Boss" <boss@work.example>\r\nTo: me@example.com\r\nSubject: "Quarterly" \\ report\r\n\r\nbody\r\n'


def outcome(settings: Settings, now: datetime.datetime | None = None):
    env = Environment("boss@work.example", "me@example.com", frozenset(), None, now)
    return run(compile_script(script(settings)), MessageView(RAW, parse_message(RAW)), env).actions


def test_rules_round_trip_and_run():
    settings = Settings(
        rules=[
            # Flags apply to the moves after them (RFC 5232 3): marking comes first.
            Rule("from", "boss@", "seen"),
            Rule("subject", '"Quarterly" \\', "move", target="Work/Reports"),
            Rule("size", "1000", "discard"),
            Rule("header", "x", "forward", header="X-Mailer", target="me@elsewhere.example"),
        ]
    )
    assert check(settings) == []
    text = script(settings)
    assert settings_of(text) == settings
    assert outcome(settings) == [FileInto("Work/Reports", ("\\Seen",), create=True)]


def test_stop_and_copy():
    settings = Settings(
        rules=[
            Rule("to", "me@", "copy", target="Copies", stop=True),
            Rule("subject", "report", "forward", target="x@elsewhere.example"),
        ]
    )
    assert outcome(settings) == [Keep(), FileInto("Copies", create=True)]
    settings.rules[0].stop = False
    assert outcome(settings) == [Keep(), FileInto("Copies", create=True), Redirect("x@elsewhere.example")]


def test_vacation_with_dates():
    settings = Settings(vacation=VacationSettings(True, "Away", "Back on\nMonday.", "2026-12-20", "2026-12-31", days=3))
    assert check(settings) == []
    inside = datetime.datetime(2026, 12, 24, 12, tzinfo=datetime.UTC)
    assert outcome(settings, inside) == [Keep(), Vacation("Back on\nMonday.", 3, subject="Away")]
    after = datetime.datetime(2027, 1, 2, tzinfo=datetime.UTC)
    assert outcome(settings, after) == [Keep()]


def test_problems_are_reported():
    settings = Settings(
        rules=[Rule("size", "big", "move"), Rule("header", "x", "forward", target="nowhere")],
        vacation=VacationSettings(True, "", "", "tomorrow", "", days=0),
    )
    assert check(settings) == [
        "Rule 1: the size is a whole number of kilobytes.",
        "Rule 1: say where to.",
        "Rule 2: name the header.",
        "Rule 2: forward to an e-mail address.",
        "The vacation reply needs a message.",
        "The vacation start date is not a date.",
        "Answer each sender again after 1 to 90 days.",
    ]


def test_hand_written_script_has_no_settings():
    assert settings_of("keep;") is None
    assert settings_of("") == Settings()
