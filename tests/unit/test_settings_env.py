"""Settings from the environment: typed parsing, and one-line start-up errors naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailsite.env import Env, SettingError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("method", "value", "expected"),
    [
        ("port", "2525", 2525),
        ("port", " 25 ", 25),
        ("size", "26214400", 26214400),
        ("size", "25M", 25 * 1024 * 1024),
        ("size", "25MiB", 25 * 1024 * 1024),
        ("size", "1g", 1024**3),
        ("size", "512k", 512 * 1024),
        ("bool", "yes", True),
        ("bool", "FALSE", False),
        ("int", "7", 7),
        ("float", "0.5", 0.5),
        ("list", "a, b,,c", ["a", "b", "c"]),
        ("host_ports", "127.0.0.1:5353, 10.0.0.1", [("127.0.0.1", 5353), ("10.0.0.1", 53)]),
    ],
)
def test_good_values_parse(method: str, value: str, expected: object) -> None:
    env = Env({"MAILSITE_X": value})
    reader = getattr(env, method)
    result = reader("MAILSITE_X") if method == "host_ports" else reader("MAILSITE_X", None)
    assert result == expected


@pytest.mark.parametrize(
    ("method", "value"),
    [
        ("port", "abc"),
        ("port", "0"),
        ("port", "65536"),
        ("port", "-1"),
        ("size", "lots"),
        ("size", "0"),
        ("size", "-5M"),
        ("bool", "maybe"),
        ("int", "1.5"),
        ("float", "soon"),
        ("host_ports", "127.0.0.1:dns"),
    ],
)
def test_bad_values_name_the_variable(method: str, value: str) -> None:
    env = Env({"MAILSITE_X": value})
    reader = getattr(env, method)
    with pytest.raises(SettingError) as error:
        reader("MAILSITE_X") if method == "host_ports" else reader("MAILSITE_X", 1)
    assert "MAILSITE_X" in str(error.value)
    assert "\n" not in str(error.value)


def test_unset_and_blank_give_the_default() -> None:
    env = Env({"MAILSITE_BLANK": "  "})
    assert env.port("MAILSITE_BLANK", 2525) == 2525
    assert env.port("MAILSITE_UNSET", 1110) == 1110
    assert env.size("MAILSITE_UNSET", 99) == 99


def test_int_bounds() -> None:
    with pytest.raises(SettingError, match="MAILSITE_X must be at least 1"):
        Env({"MAILSITE_X": "0"}).int("MAILSITE_X", 5, minimum=1)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAILSITE_SMTP_PORT", "smtp"),
        ("MAILSITE_IMAPS_PORT", "99999"),
        ("MAILSITE_MAX_MESSAGE_SIZE", "huge"),
        ("MAILSITE_DEBUG", "perhaps"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("MAILSITE_BROKER_URL", "redis-on-localhost"),
        ("MAILSITE_TLS_CERT", "/nonexistent/cert.pem"),
    ],
)
def test_start_up_fails_with_one_line_naming_the_variable(variable: str, value: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSITE_", "DATABASE_URL", "DJANGO_"))}
    env.update({"MAILSITE_DATA_DIR": str(tmp_path), variable: value})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
