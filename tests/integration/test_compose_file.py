"""docker-compose.yml is valid Compose, and every command it runs exists in the project."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from celery import Celery
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: spec for name, spec in SERVICES.items() if spec.get("build")}


def test_top_level_structure() -> None:
    assert set(COMPOSE) <= {"services", "volumes", "networks", "configs", "secrets", "name"} | {
        key for key in COMPOSE if key.startswith("x-")
    }
    for name, spec in SERVICES.items():
        assert "image" in spec or "build" in spec, name
        for dependency in spec.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith(("/", ".")) or source in COMPOSE["volumes"], f"{name}: volume {source}"
        for mapping in spec.get("ports", []):
            host, _, container = str(mapping).partition(":")
            assert host.isdigit(), f"{name}: port {mapping}"
            assert container.isdigit(), f"{name}: port {mapping}"


def test_every_process_of_the_system_has_a_service() -> None:
    commands = {" ".join(spec.get("command", [])) for spec in OURS.values()}
    for needed in ["manage.py listen", "worker", "beat", "manage.py web"]:
        assert any(needed in command for command in commands), needed
    assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("service", sorted(OURS))
def test_service_command_exists(service: str) -> None:
    command = OURS[service]["command"]
    assert isinstance(command, list), "use the exec form so signals reach the process"
    if command[:2] == ["python", "manage.py"]:
        assert command[2] in get_commands(), f"no management command {command[2]}"
    elif command[0] == "celery":
        app_module = command[command.index("--app") + 1]
        assert isinstance(importlib.import_module(app_module).app, Celery)
        assert command[command.index("--app") + 2] in {"worker", "beat"}
    elif command[0] == "uvicorn":
        module, _, attribute = command[1].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    else:
        pytest.fail(f"{service}: unrecognised command {command}")
