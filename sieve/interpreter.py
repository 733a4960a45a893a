"""Running a validated Sieve script against one message: tests evaluated, actions collected.

Pure: the message (`MessageView`), the envelope, the recipient's folder names, the junk verdict and the
current time come in as arguments; a `Result` comes out. Any runtime error (a limit, an action conflict)
ends the run with the implicit keep alone (RFC 5228 2.10.6); the caller logs `Result.error`.

Limits, per run: MAX_ACTIONS actions, MAX_REDIRECTS redirects, MAX_STEPS units of work (each command, test,
and each value compared counts, long values count for their length), variable values cut at
MAX_VARIABLE_CHARS characters (RFC 5229 6 allows it) and at most MAX_VARIABLES variables.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailcore.headers import parse_date
from sieve.actions import Action, Discard, FileInto, Keep, Redirect, Reject, Result, Vacation
from sieve.errors import SieveRuntimeError
from sieve.match import matches
from sieve.message import MessageView
from sieve.parser import Argument, Command, Number, Strings, Test
from sieve.validate import ADDRESS, Script

MAX_ACTIONS = 32
MAX_REDIRECTS = 4
MAX_STEPS = 200_000
MAX_VARIABLE_CHARS = 4096
MAX_VARIABLES = 128
DEFAULT_VACATION_DAYS = 7
MAX_VACATION_DAYS = 90
_STEP_CHARS = 256  # a compared value costs one step per this many characters

_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_WILDCARDS = re.compile(r"([*?\\])")


@dataclass
class Environment:
    envelope_from: str  # "" for the null sender
    envelope_to: str  # the recipient address as given at RCPT
    mailboxes: frozenset[str] = frozenset()  # the account's folder names (RFC 5490 mailboxexists)
    spam_percent: int | None = None  # junk verdict, 0 (surely ham) to 100 (surely spam); None when not tested
    now: datetime.datetime | None = None  # aware; its zone is the "local" zone of RFC 5260


class _Stop(Exception):
    pass


def _split_flags(values: Iterable[str]) -> list[str]:
    """Flags named in a list (RFC 5232 3: each string may hold several, separated by spaces), de-duplicated
    ignoring case."""
    seen: dict[str, str] = {}
    for value in values:
        for flag in value.split():
            seen.setdefault(flag.lower(), flag)
    return list(seen.values())


def _date_part(when: datetime.datetime, part: str) -> str | None:
    offset = when.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    zone = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    # RFC 5260 4.2: the date-part strings.
    match part:
        case "year":
            return f"{when.year:04d}"
        case "month":
            return f"{when.month:02d}"
        case "day":
            return f"{when.day:02d}"
        case "date":
            return f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
        case "julian":
            return str((when.date() - datetime.date(1858, 11, 17)).days)
        case "hour":
            return f"{when.hour:02d}"
        case "minute":
            return f"{when.minute:02d}"
        case "second":
            return f"{when.second:02d}"
        case "time":
            return f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
        case "iso8601":
            return when.strftime("%Y-%m-%dT%H:%M:%S") + f"{zone[:3]}:{zone[3:]}"
        case "std11":
            return when.strftime("%a, %d %b %Y %H:%M:%S ") + zone
        case "zone":
            return zone
        case "weekday":
            return str((when.weekday() + 1) % 7)  # 0 is Sunday
    return None


def _zone(text: str) -> datetime.timezone:
    sign = -1 if text[0] == "-" else 1
    return datetime.timezone(sign * datetime.timedelta(hours=int(text[1:3]), minutes=int(text[3:5])))


class _Run:
    def __init__(self, script: Script, message: MessageView, env: Environment) -> None:
        self.required = script.required
        self.expand_variables = "variables" in script.required
        self.message = message
        self.env = env
        self.variables: dict[str, str] = {}
        self.match_variables: list[str] = []
        self.flags: list[str] = []  # the internal variable of RFC 5232 3
        self.actions: list[Action] = []
        self.implicit_keep = True
        self.redirects = 0
        self.steps = 0

    # Work accounting

    def spend(self, units: int = 1) -> None:
        self.steps += units
        if self.steps > MAX_STEPS:
            raise SieveRuntimeError(f"script used more than {MAX_STEPS} steps")

    # Strings and variables (RFC 5229 3)

    def expand(self, text: str) -> str:
        if not self.expand_variables or "${" not in text:
            return text

        def value(m: re.Match[str]) -> str:
            name = m[1]
            if name.isdigit():
                index = int(name)
                return self.match_variables[index] if index < len(self.match_variables) else ""
            if _NAME.match(name):
                return self.variables.get(name.lower(), "")
            return m[0]

        expanded = _VARIABLE.sub(value, text)
        self.spend(1 + len(expanded) // _STEP_CHARS)
        return expanded

    def strings(self, argument: Argument | None) -> Sequence[str]:
        assert isinstance(argument, Strings)
        if not self.expand_variables:
            return argument.values  # the script's own strings: read, never changed
        return [self.expand(value) for value in argument.values]

    def string(self, argument: Argument | None) -> str:
        return self.strings(argument)[0]

    def set_variable(self, name: str, value: str) -> None:
        name = name.lower()
        if name not in self.variables and len(self.variables) >= MAX_VARIABLES:
            raise SieveRuntimeError(f"more than {MAX_VARIABLES} variables")
        self.variables[name] = value[:MAX_VARIABLE_CHARS]

    # Actions

    def add(self, action: Action) -> None:
        if action in self.actions:
            return  # RFC 5228 2.10.3: the same fileinto, redirect or keep twice is done once
        if len(self.actions) >= MAX_ACTIONS:
            raise SieveRuntimeError(f"more than {MAX_ACTIONS} actions")
        if isinstance(action, Redirect):
            self.redirects += 1
            if self.redirects > MAX_REDIRECTS:
                raise SieveRuntimeError(f"more than {MAX_REDIRECTS} redirects")
        if isinstance(action, Vacation) and any(isinstance(a, Vacation) for a in self.actions):
            raise SieveRuntimeError("vacation used twice")  # RFC 5230 4.7
        taken = [*self.actions, action]
        rejects = sum(isinstance(a, Reject) for a in taken)
        if rejects and (rejects > 1 or any(not isinstance(a, Reject | Discard) for a in taken)):
            # RFC 5429 2.1/2.2: reject conflicts with keep, fileinto, redirect, vacation and another reject.
            raise SieveRuntimeError("reject cannot be combined with other actions")
        self.actions.append(action)

    def flag_list(self, command: Command) -> tuple[str, ...]:
        if "flags" in command.tagged:
            return tuple(_split_flags(self.strings(command.tagged["flags"])))
        return tuple(self.flags)

    def run_block(self, commands: list[Command]) -> None:
        skip_chain = False
        for command in commands:
            self.spend()
            name = command.name
            if name in ("elsif", "else"):
                if skip_chain:
                    continue
            else:
                skip_chain = False
            if name in ("if", "elsif", "else"):
                if name == "else" or self.test(command.tests[0]):
                    skip_chain = True
                    assert command.block is not None
                    self.run_block(command.block)
                continue
            self.command(command)

    def command(self, command: Command) -> None:
        name = command.name
        tagged = command.tagged
        match name:
            case "require":
                pass
            case "stop":
                raise _Stop
            case "keep":
                self.add(Keep(self.flag_list(command)))
                self.implicit_keep = False
            case "discard":
                self.add(Discard())
                self.implicit_keep = False
            case "fileinto":
                self.add(FileInto(self.string(command.positional[0]), self.flag_list(command), "create" in tagged))
                if "copy" not in tagged:
                    self.implicit_keep = False
            case "redirect":
                address = self.string(command.positional[0]).strip()
                if not ADDRESS.match(address):
                    raise SieveRuntimeError(f"redirect to {address!r}, which is not an e-mail address")
                self.add(Redirect(address))
                if "copy" not in tagged:
                    self.implicit_keep = False
            case "reject" | "ereject":
                self.add(Reject(self.string(command.positional[0]), extended=name == "ereject"))
                self.implicit_keep = False
            case "vacation":
                days = tagged.get("days")
                number = days.value if isinstance(days, Number) else DEFAULT_VACATION_DAYS
                reason = self.string(command.positional[0])
                self.add(
                    Vacation(
                        reason=reason,
                        days=min(max(number, 1), MAX_VACATION_DAYS),
                        subject=self.string(tagged["subject"]) if "subject" in tagged else None,
                        from_=self.string(tagged["from"]) if "from" in tagged else None,
                        addresses=tuple(self.strings(tagged["addresses"])) if "addresses" in tagged else (),
                        # RFC 5230 4.2: without :handle, the reason and the other arguments identify the reply.
                        handle=self.string(tagged["handle"]) if "handle" in tagged else "",
                        mime="mime" in tagged,
                    )
                )
            case "set":
                self.set_variable(command.positional[0].values[0], self.modified(command))  # type: ignore[union-attr]
            case "setflag" | "addflag" | "removeflag":
                self.change_flags(command)
            case _:
                raise SieveRuntimeError(f"command {name} is not implemented")

    def modified(self, command: Command) -> str:
        value = self.string(command.positional[1])
        tags = command.tagged
        # RFC 5229 4.1: modifiers apply from the highest precedence (40) down to the lowest (10).
        if "lower" in tags:
            value = value.lower()
        if "upper" in tags:
            value = value.upper()
        if "lowerfirst" in tags:
            value = value[:1].lower() + value[1:]
        if "upperfirst" in tags:
            value = value[:1].upper() + value[1:]
        if "quotewildcard" in tags:
            value = _WILDCARDS.sub(r"\\\1", value)
        if "length" in tags:
            value = str(len(value))
        return value

    def change_flags(self, command: Command) -> None:
        if len(command.positional) == 2:
            variable = self.string(command.positional[0])
            current = self.variables.get(variable.lower(), "").split()
        else:
            variable = None
            current = self.flags
        given = _split_flags(self.strings(command.positional[-1]))
        if command.name == "setflag":
            new = given
        elif command.name == "addflag":
            new = _split_flags([*current, *given])
        else:
            removed = {flag.lower() for flag in given}
            new = [flag for flag in current if flag.lower() not in removed]
        if variable is None:
            self.flags = new
        else:
            self.set_variable(variable, " ".join(new))

    # Tests

    def test(self, test: Test) -> bool:
        self.spend()
        name = test.name
        match name:
            # The usual tests of a rules editor's scripts first: a match statement tries its cases in order.
            case "header":
                values = [v for h in self.strings(test.positional[0]) for v in self.message.header(h)]
                return self.compare(test, values, test.positional[1])
            case "address":
                found = [a for h in self.strings(test.positional[0]) for a in self.message.addresses(h)]
                return self.compare_addresses(test, found)
            case "true":
                return True
            case "false":
                return False
            case "not":
                return not self.test(test.tests[0])
            case "allof":
                return all(self.test(t) for t in test.tests)
            case "anyof":
                return any(self.test(t) for t in test.tests)
            case "exists":
                return all(self.message.raw_values(h) for h in self.strings(test.positional[0]))
            case "size":
                limit = test.positional[0]
                assert isinstance(limit, Number)
                if "over" in test.tagged:
                    return self.message.size > limit.value
                return self.message.size < limit.value
            case "envelope":
                return self.compare_addresses(test, self.envelope_addresses(self.strings(test.positional[0])))
            case "body":
                return self.compare(test, self.body_texts(test), test.positional[0])
            case "string":
                given = self.strings(test.positional[0])
                if test.tagged.get("count") is not None:
                    given = [v for v in given if v]  # RFC 5229 5: empty strings are not counted
                return self.compare(test, given, test.positional[1])
            case "hasflag":
                if len(test.positional) == 2:
                    names = self.strings(test.positional[0])
                    flags = _split_flags(self.variables.get(n.lower(), "") for n in names)
                else:
                    flags = self.flags
                return self.compare(test, flags, test.positional[-1])
            case "date" | "currentdate":
                return self.date(test)
            case "mailboxexists":
                return all(self.mailbox_exists(n) for n in self.strings(test.positional[0]))
            case "spamtest":
                return self.compare(test, [self.spamtest("percent" in test.tagged)], test.positional[0])
        raise SieveRuntimeError(f"test {name} is not implemented")

    def compare(self, test: Test, values: Sequence[str], keys: Argument) -> bool:
        how = test.comparison
        relation = self.string(how.relation).lower() if how.relation is not None else None
        key_list = self.strings(keys)
        # Each value costs one step, and one more for every _STEP_CHARS characters (none when all are short).
        units = len(values)
        if sum(map(len, values)) >= _STEP_CHARS:
            units += sum(len(v) // _STEP_CHARS for v in values)
        self.spend(units * max(1, len(key_list)))
        result, variables = matches(how.match_type, how.comparator, values, key_list, relation)
        if variables is not None and self.expand_variables:
            # RFC 5229 3.2: a successful :matches replaces the match variables.
            self.match_variables = [v[:MAX_VARIABLE_CHARS] for v in variables]
        return result

    def compare_addresses(self, test: Test, found: list[tuple[str, str | None]]) -> bool:
        part = test.comparison.address_part
        values: list[str] = []
        for local, domain in found:
            value = self.address_part(part, local, domain)
            if value is not None:
                values.append(value)
        return self.compare(test, values, test.positional[1])

    @staticmethod
    def address_part(part: str, local: str, domain: str | None) -> str | None:
        if part == "all":
            return f"{local}@{domain}" if domain is not None else local
        if part == "localpart":
            return local
        if part == "domain":
            return domain or ""
        # RFC 5233 4: user+detail; without a separator :user is the local part and :detail matches nothing.
        user, separator, detail = local.partition("+")
        if part == "user":
            return user
        return detail if separator else None

    def envelope_addresses(self, parts: Sequence[str]) -> list[tuple[str, str | None]]:
        found: list[tuple[str, str | None]] = []
        for part in parts:
            part = part.lower()
            if part == "from":
                address = self.env.envelope_from
            elif part == "to":
                address = self.env.envelope_to
            else:
                continue
            if not address:
                found.append(("", None))  # RFC 5228 5.4: the null reverse-path is the empty string
                continue
            local, at, domain = address.rpartition("@")
            found.append((local, domain) if at else (address, None))
        return found

    def body_texts(self, test: Test) -> list[str]:
        if "raw" in test.tagged:
            texts = [self.message.body_raw()]
        elif "content" in test.tagged:
            texts = self.message.body_parts(self.strings(test.tagged["content"]))
        else:
            texts = self.message.body_parts(None)
        return texts

    def date(self, test: Test) -> bool:
        tagged = test.tagged
        zone = _zone(self.string(tagged["zone"])) if "zone" in tagged else None
        local = self.env.now.tzinfo if self.env.now is not None else datetime.UTC
        if test.name == "currentdate":
            when = self.env.now or datetime.datetime.now(datetime.UTC)
        else:
            values = self.message.header(self.string(test.positional[0]))
            parsed = parse_date(values[0]) if values else None
            if parsed is None:
                return False  # RFC 5260 4: a missing or unparseable date makes the test false
            when = parsed
        if "originalzone" not in tagged:
            when = when.astimezone(zone or local)
        part = self.string(test.positional[-2]).lower()
        value = _date_part(when, part)
        if value is None:
            raise SieveRuntimeError(f'unknown date part "{part}"')
        return self.compare(test, [value], test.positional[-1])

    def mailbox_exists(self, name: str) -> bool:
        if name.upper() == "INBOX":
            return True
        return name in self.env.mailboxes

    def spamtest(self, percent: bool) -> str:
        # RFC 3685 / RFC 5235: "0" when the message was not tested; otherwise 1 (ham) to 10 (spam), or with
        # :percent 0 to 100.
        score = self.env.spam_percent
        if score is None:
            return "0"
        score = min(max(score, 0), 100)
        return str(score) if percent else str(1 + score * 9 // 100)


def run(script: Script, message: MessageView, env: Environment) -> Result:
    """Run `script` for one message; never raises for anything the script or the message does."""
    state = _Run(script, message, env)
    try:
        state.run_block(script.commands)
    except _Stop:
        pass
    except SieveRuntimeError as exc:
        return Result([Keep()], error=str(exc))
    except RecursionError:
        return Result([Keep()], error="script nested too deeply")
    actions = list(state.actions)
    if state.implicit_keep:
        keep = Keep(tuple(state.flags))
        if keep not in actions:
            actions.insert(0, keep)
    return Result(actions)
