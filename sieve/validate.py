"""What each Sieve command and test accepts, and the check of a parsed script against it.

`compile_script(text)` parses and validates: unknown commands, tests, tags and capabilities, arguments of the
wrong kind, a `require` after other commands, an `elsif` without an `if`, a capability used but not required,
are all refused with the line and column of the offending node. The interpreter can then trust the tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sieve.errors import SieveError
from sieve.parser import Argument, Command, Comparison, Number, Strings, Tag, Test, parse

# The capabilities we implement (RFC 5804 1.7 SIEVE capability string, in this order).
CAPABILITIES = (
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "body",
    "relational",
    "subaddress",
    "imap4flags",
    "copy",
    "variables",
    "date",
    "vacation",
    "mailbox",
    "spamtest",
    "spamtestplus",
    "comparator-i;ascii-numeric",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
)
COMPARATORS = {"i;octet": None, "i;ascii-casemap": None, "i;ascii-numeric": "comparator-i;ascii-numeric"}
RELATIONS = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})
DATE_PARTS = frozenset(
    {"year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601", "std11", "zone"}
    | {"weekday"}
)
SET_MODIFIERS = ("lower", "upper", "lowerfirst", "upperfirst", "quotewildcard", "length")
# RFC 5228 4.2: redirect takes an RFC 5322 address; we take a plain addr-spec (no quoting, no route), which is
# also what may safely become an SMTP RCPT.
_LABEL_CHAR = "A-Za-z0-9\u0080-\U0010ffff"
ADDRESS = re.compile(rf"[^\s\x00-\x1f\x7f<>()\[\],;:\\\"@]+@[{_LABEL_CHAR}](?:[{_LABEL_CHAR}.-]*[{_LABEL_CHAR}])?\Z")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_ZONE = re.compile(r"[+-][0-9]{4}\Z")


@dataclass(frozen=True)
class TagSpec:
    value: str | None = None  # None, "string", "strings" or "number"
    group: str | None = None  # at most one tag of a group; "size" is also required
    extension: str | None = None


@dataclass(frozen=True)
class Spec:
    positional: tuple[str, ...] = ()  # "string", "strings", "number"
    tags: dict[str, TagSpec] = field(default_factory=dict)
    extension: str | None = None
    optional_leading: int = 0  # leading positional arguments that may be left out
    tests: str = "none"  # "none", "one", "list"
    block: bool = False


_COMPARATOR = {"comparator": TagSpec("string", "comparator")}
_MATCH = {
    "is": TagSpec(None, "match"),
    "contains": TagSpec(None, "match"),
    "matches": TagSpec(None, "match"),
    "value": TagSpec("string", "match", "relational"),
    "count": TagSpec("string", "match", "relational"),
}
_ADDRESS_PART = {
    "all": TagSpec(None, "address-part"),
    "localpart": TagSpec(None, "address-part"),
    "domain": TagSpec(None, "address-part"),
    "user": TagSpec(None, "address-part", "subaddress"),
    "detail": TagSpec(None, "address-part", "subaddress"),
}
_ZONE_TAGS = {"zone": TagSpec("string", "zone"), "originalzone": TagSpec(None, "zone")}
_FLAGS = {"flags": TagSpec("strings", None, "imap4flags")}

TESTS: dict[str, Spec] = {
    "address": Spec(("strings", "strings"), _COMPARATOR | _MATCH | _ADDRESS_PART),
    "envelope": Spec(("strings", "strings"), _COMPARATOR | _MATCH | _ADDRESS_PART, "envelope"),
    "header": Spec(("strings", "strings"), _COMPARATOR | _MATCH),
    "exists": Spec(("strings",)),
    "size": Spec(("number",), {"over": TagSpec(None, "size"), "under": TagSpec(None, "size")}),
    "allof": Spec(tests="list"),
    "anyof": Spec(tests="list"),
    "not": Spec(tests="one"),
    "true": Spec(),
    "false": Spec(),
    "body": Spec(
        ("strings",),
        _COMPARATOR
        | _MATCH
        | {
            "raw": TagSpec(None, "transform"),
            "content": TagSpec("strings", "transform"),
            "text": TagSpec(None, "transform"),
        },
        "body",
    ),
    "string": Spec(("strings", "strings"), _COMPARATOR | _MATCH, "variables"),
    "hasflag": Spec(("strings", "strings"), _COMPARATOR | _MATCH, "imap4flags", optional_leading=1),
    "date": Spec(("string", "string", "strings"), _ZONE_TAGS | _COMPARATOR | _MATCH, "date"),
    "currentdate": Spec(("string", "strings"), {"zone": TagSpec("string", "zone")} | _COMPARATOR | _MATCH, "date"),
    "mailboxexists": Spec(("strings",), {}, "mailbox"),
    "spamtest": Spec(("string",), {"percent": TagSpec(None, None, "spamtestplus")} | _COMPARATOR | _MATCH),
}

COMMANDS: dict[str, Spec] = {
    "require": Spec(("strings",)),
    "if": Spec(tests="one", block=True),
    "elsif": Spec(tests="one", block=True),
    "else": Spec(block=True),
    "stop": Spec(),
    "keep": Spec((), _FLAGS),
    "discard": Spec(),
    "fileinto": Spec(
        ("string",),
        {"copy": TagSpec(None, None, "copy"), "create": TagSpec(None, None, "mailbox")} | _FLAGS,
        "fileinto",
    ),
    "redirect": Spec(("string",), {"copy": TagSpec(None, None, "copy")}),
    "reject": Spec(("string",), {}, "reject"),
    "ereject": Spec(("string",), {}, "ereject"),
    "vacation": Spec(
        ("string",),
        {
            "days": TagSpec("number"),
            "subject": TagSpec("string"),
            "from": TagSpec("string"),
            "addresses": TagSpec("strings"),
            "mime": TagSpec(),
            "handle": TagSpec("string"),
        },
        "vacation",
    ),
    "set": Spec(("string", "string"), {name: TagSpec() for name in SET_MODIFIERS}, "variables"),
    "setflag": Spec(("strings", "strings"), {}, "imap4flags", optional_leading=1),
    "addflag": Spec(("strings", "strings"), {}, "imap4flags", optional_leading=1),
    "removeflag": Spec(("strings", "strings"), {}, "imap4flags", optional_leading=1),
}


@dataclass
class Script:
    """A validated script: the tree the interpreter runs and the capabilities it required."""

    commands: list[Command]
    required: frozenset[str]


def _at(node: Command | Test | Argument, message: str) -> SieveError:
    return SieveError(message, node.line, node.column)


def _kind_ok(argument: Argument, kind: str) -> bool:
    if kind == "number":
        return isinstance(argument, Number)
    if kind == "string":
        return isinstance(argument, Strings) and not argument.is_list
    return isinstance(argument, Strings)


_KIND_NAMES = {"number": "a number", "string": "a string", "strings": "a string list"}


class _Validator:
    def __init__(self) -> None:
        self.required: set[str] = set()

    def need(self, extension: str | None, node: Command | Test | Argument, what: str) -> None:
        if extension is None:
            return
        if extension == "spamtest" and "spamtestplus" in self.required:
            return  # RFC 3685 3: spamtestplus implies spamtest
        if extension not in self.required:
            raise _at(node, f'{what} needs require "{extension}"')

    def arguments(self, node: Command | Test, spec: Spec, kind: str) -> None:
        groups: dict[str, str] = {}
        args = node.arguments
        i = 0
        while i < len(args):
            argument = args[i]
            if not isinstance(argument, Tag):
                break
            tag = spec.tags.get(argument.name)
            if tag is None:
                raise _at(argument, f"{node.name} has no argument :{argument.name}")
            self.need(tag.extension, argument, f":{argument.name}")
            if argument.name in node.tagged:
                raise _at(argument, f":{argument.name} given twice")
            if tag.group is not None:
                if tag.group in groups:
                    raise _at(argument, f":{argument.name} cannot be used with :{groups[tag.group]}")
                groups[tag.group] = argument.name
            value = None
            if tag.value is not None:
                i += 1
                if i >= len(args) or not _kind_ok(args[i], tag.value):
                    raise _at(argument, f":{argument.name} must be followed by {_KIND_NAMES[tag.value]}")
                value = args[i]
            node.tagged[argument.name] = value
            i += 1
        positional = args[i:]
        for argument in positional:
            if isinstance(argument, Tag):
                raise _at(argument, f":{argument.name} must come before the other arguments of {node.name}")
        wanted = spec.positional
        if len(positional) < len(wanted) and len(wanted) - len(positional) <= spec.optional_leading:
            wanted = wanted[len(wanted) - len(positional) :]
        if len(positional) != len(wanted):
            raise _at(node, f"{node.name} takes {len(spec.positional)} argument(s), {len(positional)} given")
        for argument, want in zip(positional, wanted, strict=True):
            if not _kind_ok(argument, want):
                raise _at(argument, f"{node.name}: expected {_KIND_NAMES[want]}")
        node.positional = list(positional)
        if spec.tests == "none" and node.tests:
            raise _at(node.tests[0], f"{node.name} takes no test")
        if spec.tests == "one" and len(node.tests) != 1:
            raise _at(node, f"{node.name} takes exactly one test")
        if spec.tests == "list" and not node.tests:
            raise _at(node, f"{node.name} takes a list of tests")
        if "size" in {t.group for t in spec.tags.values()} and "size" not in groups:
            raise _at(node, f"{node.name} needs :over or :under")
        self.check_values(node)

    def check_values(self, node: Command | Test) -> None:
        comparator = node.tagged.get("comparator")
        if isinstance(comparator, Strings):
            name = comparator.values[0].lower()
            if name not in COMPARATORS:
                raise _at(comparator, f'unknown comparator "{comparator.values[0]}"')
            self.need(COMPARATORS[name], comparator, f'comparator "{name}"')
        for match in ("value", "count"):
            relation = node.tagged.get(match)
            if isinstance(relation, Strings) and relation.values[0].lower() not in RELATIONS:
                raise _at(relation, f'unknown relation "{relation.values[0]}" (gt, ge, lt, le, eq, ne)')
        zone = node.tagged.get("zone")
        if isinstance(zone, Strings) and not _ZONE.match(zone.values[0]):
            raise _at(zone, f'time zone "{zone.values[0]}" is not of the form +hhmm or -hhmm')
        if node.name in ("date", "currentdate"):
            part = node.positional[-2]
            assert isinstance(part, Strings)
            if part.values[0].lower() not in DATE_PARTS and "${" not in part.values[0]:
                raise _at(part, f'unknown date part "{part.values[0]}"')
        if node.name == "set":
            variable = node.positional[0]
            assert isinstance(variable, Strings)
            if not _VARIABLE_NAME.match(variable.values[0]):
                raise _at(variable, f'"{variable.values[0]}" is not a variable name')
        if node.name == "redirect":
            target = node.positional[0]
            assert isinstance(target, Strings)
            if "${" not in target.values[0] and not ADDRESS.match(target.values[0].strip()):
                raise _at(target, f'"{target.values[0]}" is not an e-mail address')
        if node.name == "vacation":
            days = node.tagged.get("days")
            if isinstance(days, Number) and days.value < 1:
                raise _at(days, ":days must be at least 1")

    def block(self, commands: list[Command], top: bool) -> None:
        previous: str | None = None
        started = False
        for command in commands:
            spec = COMMANDS.get(command.name)
            if spec is None:
                raise _at(command, f'unknown command "{command.name}"')
            if command.name == "require":
                # RFC 5228 3.2: require is only allowed at the start of a script.
                if not top or started:
                    raise _at(command, "require must come before any other command")
            else:
                started = True
            if command.name in ("elsif", "else") and previous not in ("if", "elsif"):
                raise _at(command, f"{command.name} without a preceding if")
            self.need(spec.extension, command, command.name)
            self.arguments(command, spec, "command")
            if spec.block and command.block is None:
                raise _at(command, f"{command.name} needs a block {{ ... }}")
            if not spec.block and command.block is not None:
                raise _at(command, f"{command.name} takes no block; a ';' is missing")
            if command.name == "require":
                self.require(command)
            for test in command.tests:
                self.test(test)
            if command.block is not None:
                self.block(command.block, top=False)
            previous = command.name

    def require(self, command: Command) -> None:
        names = command.positional[0]
        assert isinstance(names, Strings)
        for name in names.values:
            if name not in CAPABILITIES:
                raise _at(names, f'unsupported extension "{name}"')
            self.required.add(name)
            if name == "ereject":
                self.required.add("reject")

    def test(self, test: Test) -> None:
        spec = TESTS.get(test.name)
        if spec is None:
            raise _at(test, f'unknown test "{test.name}"')
        if test.name == "spamtest":
            if not {"spamtest", "spamtestplus"} & self.required:
                raise _at(test, 'spamtest needs require "spamtest"')
        else:
            self.need(spec.extension, test, test.name)
        self.arguments(test, spec, "test")
        test.comparison = _comparison(test.tagged)
        for child in test.tests:
            self.test(child)


def _comparison(tagged: dict[str, Argument | None]) -> Comparison:
    """The comparator, match type and address part of a test's tags (at most one of each, as validated)."""
    comparator = tagged.get("comparator")
    match_type = next((name for name in ("contains", "matches", "value", "count") if name in tagged), "is")
    relation = tagged.get(match_type)
    return Comparison(
        comparator=comparator.values[0].lower() if isinstance(comparator, Strings) else "i;ascii-casemap",
        match_type=match_type,
        relation=relation if isinstance(relation, Strings) else None,
        address_part=next((part for part in ("localpart", "domain", "user", "detail") if part in tagged), "all"),
    )


def compile_script(source: str | bytes) -> Script:
    """Parse and validate a script; SieveError with line and column when it is refused."""
    commands = parse(source)
    validator = _Validator()
    validator.block(commands, top=True)
    return Script(commands, frozenset(validator.required))
