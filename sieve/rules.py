"""The webmail's rules and vacation settings, and the Sieve script written from them.

The script keeps the settings it was written from on one comment line (`# mailsite-rules: {json}`), as
Roundcube's managesieve plugin keeps its own markers, so the editor can show them again; a script edited by
hand without that line is shown in the raw editor only. Pure: no Django, no I/O.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field

MARKER = "# mailsite-rules: "
SCRIPT_NAME = "webmail"

FIELDS = {"from": "From", "to": "To or Cc", "subject": "Subject", "header": "Header", "size": "Size over (KB)"}
OPERATORS = {"contains": "contains", "is": "is", "matches": "matches (* and ?)"}
ACTIONS = {
    "move": "Move to folder",
    "copy": "Copy to folder",
    "seen": "Mark as read",
    "flag": "Flag",
    "forward": "Forward to",
    "discard": "Delete",
}


@dataclass
class Rule:
    field: str  # a key of FIELDS
    value: str
    action: str  # a key of ACTIONS
    operator: str = "contains"
    header: str = ""  # the header's name when field is "header"
    target: str = ""  # the folder (move, copy) or the address (forward)
    stop: bool = False  # no later rule applies to a message this one matched


@dataclass
class VacationSettings:
    enabled: bool = False
    subject: str = ""
    message: str = ""
    start: str = ""  # YYYY-MM-DD or ""
    end: str = ""
    days: int = 7


@dataclass
class Settings:
    rules: list[Rule] = field(default_factory=list)
    vacation: VacationSettings = field(default_factory=VacationSettings)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _test(rule: Rule) -> str:
    if rule.field == "size":
        return f"size :over {int(rule.value)}K"
    names = {"from": '"from"', "to": '["to", "cc"]', "subject": '"subject"'}.get(rule.field) or _quote(rule.header)
    return f"header :{rule.operator} {names} {_quote(rule.value)}"


def _actions(rule: Rule) -> list[str]:
    match rule.action:
        case "move":
            actions = [f"fileinto :create {_quote(rule.target)};"]
        case "copy":
            actions = [f"fileinto :copy :create {_quote(rule.target)};"]
        case "seen":
            actions = ['addflag "\\\\Seen";']
        case "flag":
            actions = ['addflag "\\\\Flagged";']
        case "forward":
            actions = [f"redirect :copy {_quote(rule.target)};"]
        case _:
            actions = ["discard;"]
    if rule.stop:
        actions.append("stop;")
    return actions


def _date_ok(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def check(settings: Settings) -> list[str]:
    """What is wrong with the settings, in words for the form; empty when they make a valid script."""
    problems = []
    for number, rule in enumerate(settings.rules, 1):
        if rule.field not in FIELDS or rule.action not in ACTIONS or rule.operator not in OPERATORS:
            problems.append(f"Rule {number}: unknown choice.")
        if rule.field == "size" and not rule.value.strip().isdigit():
            problems.append(f"Rule {number}: the size is a whole number of kilobytes.")
        if rule.field == "header" and not rule.header.strip():
            problems.append(f"Rule {number}: name the header.")
        if rule.action in ("move", "copy", "forward") and not rule.target.strip():
            problems.append(f"Rule {number}: say where to.")
        if rule.action == "forward" and "@" not in rule.target:
            problems.append(f"Rule {number}: forward to an e-mail address.")
    vacation = settings.vacation
    if vacation.enabled and not vacation.message.strip():
        problems.append("The vacation reply needs a message.")
    for label, value in (("start", vacation.start), ("end", vacation.end)):
        if value and not _date_ok(value):
            problems.append(f"The vacation {label} date is not a date.")
    if not 1 <= vacation.days <= 90:
        problems.append("Answer each sender again after 1 to 90 days.")
    return problems


def script(settings: Settings) -> str:
    """The Sieve script for these settings (vacation first, so rules that file or stop still answer)."""
    data = json.dumps(asdict(settings), ensure_ascii=False, separators=(",", ":"))
    lines = ["# Written by the Mailsite webmail; edit the rules there, or remove the next line to edit by hand.", ""]
    lines[1] = MARKER + data
    needs = {"fileinto", "mailbox", "copy", "imap4flags"}
    vacation = settings.vacation
    body: list[str] = []
    if vacation.enabled:
        needs.add("vacation")
        reply = f"vacation :days {vacation.days}"
        if vacation.subject:
            reply += f" :subject {_quote(vacation.subject)}"
        reply += f" {_quote(vacation.message)};"
        dates = []
        if vacation.start:
            dates.append(f'currentdate :value "ge" "date" {_quote(vacation.start)}')
        if vacation.end:
            dates.append(f'currentdate :value "le" "date" {_quote(vacation.end)}')
        if dates:
            needs |= {"date", "relational"}
            body += [f"if allof({', '.join(dates)}) {{", f"  {reply}", "}"]
        else:
            body.append(reply)
    for rule in settings.rules:
        body.append(f"if {_test(rule)} {{")
        body += [f"  {action}" for action in _actions(rule)]
        body.append("}")
    lines.append("require [" + ", ".join(_quote(n) for n in sorted(needs)) + "];")
    return "\r\n".join(lines + body) + "\r\n"


def settings_of(text: str | None) -> Settings | None:
    """The settings a webmail-written script holds; None for a script without them (edited by hand)."""
    if not text:
        return Settings()
    for line in text.splitlines():
        if line.startswith(MARKER):
            try:
                data = json.loads(line[len(MARKER) :])
                return Settings(
                    rules=[Rule(**rule) for rule in data.get("rules", [])],
                    vacation=VacationSettings(**data.get("vacation", {})),
                )
            except (ValueError, TypeError):
                return None
    return None
