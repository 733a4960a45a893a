"""Production settings: a real secret key is required, and the web is HTTPS only.

Each case imports `mailsite.settings` in a fresh interpreter with a production environment (PostgreSQL URL,
no debug), as `manage.py` would, and reports what Django ends up configured with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailsite.env import SettingError
from mailsite.hardening import check_secret_key, is_trusted, parse_networks

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "Zq3-vR8pLw0sT2xYc7nB1mK5jH9gF4dA6eU_oI"

# Prints the settings that matter, then answers a few requests through the whole middleware stack.
PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.test import Client
report = {name: getattr(settings, name, None) for name in [
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME", "SESSION_COOKIE_DOMAIN",
    "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "CSRF_TRUSTED_ORIGINS"]}
def answer(path, **extra):
    response = Client(raise_request_exception=False).get(path, **extra)  # no database here: 500s are answers
    return [response.status_code, response.headers.get("Location"), response.headers.get("Strict-Transport-Security"),
            [str(morsel) for morsel in response.cookies.values()]]
report["http_login"] = answer("/login/")
report["acme"] = answer("/.well-known/acme-challenge/token")
report["autoconfig"] = answer("/mail/config-v1.1.xml")
report["autodiscover"] = answer("/Autodiscover/Autodiscover.xml")
report["https_login"] = answer("/login/", secure=True)
report["forged_proto"] = answer("/login/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="198.51.100.7")
report["proxied"] = answer("/login/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="10.1.2.3")
print(json.dumps(report))
"""


def run_settings(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSITE_", "DATABASE_URL", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="mailsite.settings",
        DATABASE_URL="postgres://mailsite@127.0.0.1:5432/mailsite",
        MAILSITE_DATA_DIR=str(tmp_path / "var"),
        MAILSITE_HOSTNAME="mail.example.org",
        MAILSITE_ALLOWED_HOSTS="mail.example.org,testserver",
        MAILSITE_TRUSTED_PROXIES="10.0.0.0/8",
        MAILSITE_SECRET_KEY=GOOD_KEY,
    )
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("key", ["change-me", "", "django-insecure-abc", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"])
def test_production_refuses_a_missing_or_weak_secret_key(tmp_path: Path, key: str) -> None:
    result = run_settings(tmp_path, MAILSITE_SECRET_KEY=key)
    assert result.returncode == 2
    assert "MAILSITE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_and_the_embedded_database_accept_any_key(tmp_path: Path) -> None:
    assert run_settings(tmp_path, MAILSITE_SECRET_KEY="change-me", MAILSITE_DEBUG="true").returncode == 0
    sqlite = f"sqlite:///{tmp_path / 'mailsite.sqlite3'}"
    assert run_settings(tmp_path, MAILSITE_SECRET_KEY="change-me", DATABASE_URL=sqlite).returncode == 0


def test_production_is_https_only(tmp_path: Path) -> None:
    result = run_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["SESSION_COOKIE_SECURE"] is True
    assert report["CSRF_COOKIE_SECURE"] is True
    assert report["SESSION_COOKIE_DOMAIN"] is None  # host-only
    assert report["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert report["CSRF_TRUSTED_ORIGINS"] == ["https://mail.example.org"]
    assert report["SECURE_HSTS_SECONDS"] >= 180 * 24 * 3600

    status, location, hsts, _ = report["http_login"]
    assert (status, location, hsts) == (301, "https://testserver/login/", None)
    for exempt in ["acme", "autoconfig", "autodiscover"]:
        assert report[exempt][0] != 301, exempt  # answered over plain HTTP, not redirected
        assert report[exempt][1] is None, exempt

    status, location, hsts, cookies = report["https_login"]
    assert status == 200
    assert hsts == f"max-age={report['SECURE_HSTS_SECONDS']}"
    (csrf,) = cookies
    assert csrf.startswith("Set-Cookie: __Host-mailsite-csrf=")
    assert "; Secure" in csrf
    assert "Domain" not in csrf
    assert "Path=/" in csrf

    # X-Forwarded-Proto counts only from the configured proxies.
    assert report["forged_proto"][:2] == [301, "https://testserver/login/"]
    assert report["proxied"][0] == 200


def test_redirect_goes_to_the_https_listeners_port(tmp_path: Path) -> None:
    result = run_settings(tmp_path, MAILSITE_HTTPS_PORT="8443")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["http_login"][:2] == [301, "https://mail.example.org:8443/login/"]


def test_development_can_opt_out_of_https(tmp_path: Path) -> None:
    result = run_settings(tmp_path, MAILSITE_INSECURE_HTTP="true")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["SESSION_COOKIE_SECURE"] is False
    assert report["http_login"][0] == 200


def test_embedded_database_serves_plain_http(tmp_path: Path) -> None:
    result = run_settings(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'mailsite.sqlite3'}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["http_login"][0] == 200


def test_secret_key_rules() -> None:
    check_secret_key(GOOD_KEY)
    for weak in ["change-me", "CHANGE-ME", "short", "ab" * 30]:
        with pytest.raises(SettingError):
            check_secret_key(weak)


def test_trusted_proxies() -> None:
    networks = parse_networks("X", ["10.0.0.0/8", "2001:db8::1"])
    assert is_trusted("10.9.8.7", networks)
    assert is_trusted("::ffff:10.9.8.7", networks)
    assert is_trusted("2001:db8::1", networks)
    assert not is_trusted("11.0.0.1", networks)
    assert not is_trusted(None, networks)
    assert not is_trusted("not an address", networks)
    with pytest.raises(SettingError, match="X"):
        parse_networks("X", ["10.0.0.0/33"])
