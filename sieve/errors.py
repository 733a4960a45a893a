"""Errors of Sieve scripts: at parse/validation time (with a position) and at run time."""

from __future__ import annotations


class SieveError(Exception):
    """A script is refused: syntax, unknown command, wrong arguments or a limit, at `line`:`column` (1-based)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line:
            return f"line {self.line}, column {self.column}: {self.message}"
        return self.message


class SieveRuntimeError(Exception):
    """Execution stopped (a limit, a conflict of actions): the message gets the implicit keep (RFC 5228 2.10.6)."""
