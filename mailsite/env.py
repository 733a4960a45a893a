"""Typed readers for settings taken from the environment.

Every reader raises :class:`SettingError` whose message is one line naming the variable, so that a bad value
stops start-up with a clear message instead of a traceback.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from pathlib import Path


class SettingError(ValueError):
    """A setting in the environment has a value that cannot be used."""


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def _raw(self, name: builtins.str) -> builtins.str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        value = self._raw(name)
        return default if value is None else value

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingError(f"{name} must be a whole number, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise SettingError(f"{name} must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise SettingError(f"{name} must be at most {maximum}, got {number}")
        return number

    def port(self, name: builtins.str, default: builtins.int) -> builtins.int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingError(f"{name} must be a TCP port number (1-65535), got {value!r}") from None
        if not 0 < number < 65536:
            raise SettingError(f"{name} must be a TCP port number (1-65535), got {number}")
        return number

    def size(self, name: builtins.str, default: builtins.int) -> builtins.int:
        """A byte count, optionally with a K, M or G suffix (binary multiples)."""
        value = self._raw(name)
        if value is None:
            return default
        multipliers = {"K": 1024, "M": 1024**2, "G": 1024**3}
        text = value.upper().removesuffix("IB").removesuffix("B")
        factor = 1
        if text and text[-1] in multipliers:
            factor = multipliers[text[-1]]
            text = text[:-1]
        try:
            number = int(text) * factor
        except ValueError:
            raise SettingError(f"{name} must be a size in bytes such as 26214400 or 25M, got {value!r}") from None
        if number <= 0:
            raise SettingError(f"{name} must be a positive size, got {value!r}")
        return number

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingError(f"{name} must be true or false, got {value!r}")

    def float(self, name: builtins.str, default: builtins.float, *, minimum: builtins.float = 0.0) -> builtins.float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingError(f"{name} must be a number of seconds, got {value!r}") from None
        if number < minimum:
            raise SettingError(f"{name} must be at least {minimum}, got {number}")
        return number

    def list(self, name: builtins.str, default: builtins.list[builtins.str]) -> builtins.list[builtins.str]:
        value = self._raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def path(self, name: builtins.str, default: Path, *, base: Path) -> Path:
        value = self._raw(name)
        path = default if value is None else Path(value).expanduser()
        return path if path.is_absolute() else (base / path)

    def optional_path(self, name: builtins.str, *, base: Path) -> Path | None:
        value = self._raw(name)
        if value is None:
            return None
        path = Path(value).expanduser()
        path = path if path.is_absolute() else (base / path)
        if not path.is_file():
            raise SettingError(f"{name} names {str(path)!r}, which is not a readable file")
        return path

    def host_ports(self, name: builtins.str) -> builtins.list[tuple[builtins.str, builtins.int]]:
        """A comma-separated list of ``host`` or ``host:port`` (port 53 by default)."""
        result = []
        for item in self.list(name, []):
            host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "53")
            if not host:
                host, port = item, "53"
            try:
                number = int(port)
            except ValueError:
                raise SettingError(f"{name} entries must look like 127.0.0.1:5353, got {item!r}") from None
            if not 0 < number < 65536:
                raise SettingError(f"{name} entries must look like 127.0.0.1:5353, got {item!r}")
            result.append((host, number))
        return result
