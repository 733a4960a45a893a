"""The operations settings: their validation, JSON logging, and the probes' paths left out of the HTTPS redirect.

Like tests/unit/test_production_settings.py, each case imports the product settings in a fresh interpreter with
a production environment (no database is reached)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.test import Client
def answer(path):
    response = Client(raise_request_exception=False).get(path)
    return [response.status_code, response.headers.get("Location")]
print(json.dumps({
    "formatter": settings.LOGGING["formatters"]["line"],
    "proxy_from": [str(network) for network in settings.MAILSITE_PROXY_PROTOCOL_FROM],
    "ready": [str(target) for target in settings.MAILSITE_READY_LISTENERS],
    "healthz": answer("/healthz"),
    "metrics": answer("/metrics"),
}))
"""


def probe(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSITE_", "DATABASE_URL", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="mailsite.settings",
        DATABASE_URL="postgres://mailsite@127.0.0.1:5432/mailsite",
        MAILSITE_DATA_DIR=str(tmp_path / "var"),
        MAILSITE_HOSTNAME="mail.example.org",
        MAILSITE_ALLOWED_HOSTS="mail.example.org,testserver",
        MAILSITE_SECRET_KEY="Zq3-vR8pLw0sT2xYc7nB1mK5jH9gF4dA6eU_oI",
    )
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_probes_answer_over_plain_http_and_metrics_do_not(tmp_path: Path) -> None:
    result = probe(
        tmp_path,
        MAILSITE_PROXY_PROTOCOL_FROM="10.0.0.0/8, 2001:db8::1",
        MAILSITE_READY_LISTENERS="smtp=smtpd:25,imaps=[2001:db8::2]:993",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["healthz"] == [200, None]
    assert report["metrics"] == [301, "https://testserver/metrics"]  # a bearer token never travels in the clear
    assert report["proxy_from"] == ["10.0.0.0/8", "2001:db8::1/128"]
    assert report["ready"] == ["smtp@smtpd:25", "imaps@2001:db8::2:993"]
    assert report["formatter"] == {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}


def test_json_logs(tmp_path: Path) -> None:
    result = probe(tmp_path, MAILSITE_LOG_FORMAT="JSON")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["formatter"] == {"()": "ops.logs.JsonFormatter"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAILSITE_LOG_FORMAT", "xml"),
        ("MAILSITE_PROXY_PROTOCOL_FROM", "balancer.example"),
        ("MAILSITE_READY_LISTENERS", "smtp=smtpd"),
        ("MAILSITE_READY_LISTENERS", "gopher=host:70"),
        ("MAILSITE_READY_LISTENERS", "imap=host:99999"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    result = probe(tmp_path, **{name: value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"mailsite: configuration error: {name}")
    assert "Traceback" not in result.stderr
