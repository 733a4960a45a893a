"""docker-compose.yml: every long-running service has a health check, and ours run `manage.py health`."""

from __future__ import annotations

from pathlib import Path

import yaml

from mailboxes.management.commands.health import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
ONE_SHOT = {"migrate", "certificate"}  # they exit when done; nothing to watch


def test_every_long_running_service_has_a_health_check() -> None:
    for name, spec in COMPOSE.items():
        if name not in ONE_SHOT:
            assert spec.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_each_listener_service_checks_its_own_listeners() -> None:
    for name, spec in COMPOSE.items():
        command = spec.get("command", [])
        if command[:2] == ["python", "manage.py"] and command[2] in SERVICES:
            assert spec["healthcheck"]["test"] == ["CMD", "python", "manage.py", "health", command[2]], name


def test_dependents_wait_for_a_healthy_redis() -> None:
    assert COMPOSE["web"]["depends_on"]["redis"]["condition"] == "service_healthy"
