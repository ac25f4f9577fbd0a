"""docker-compose.yml cannot run here (no Docker engine), so check its structure instead."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.main import get_command

from backend.cli import app
from backend.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
TUITION_SERVICES = [name for name, svc in SERVICES.items() if svc.get("image") == "tuition:latest"]


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_every_service_has_a_healthcheck_or_runs_once() -> None:
    for name, service in SERVICES.items():
        runs_once = service.get("restart") == "no"
        assert runs_once or "healthcheck" in service, f"{name} has no healthcheck"


def test_production_shaped_services_are_all_there() -> None:
    expected = {"postgres", "redis", "chain", "migrate", "api", "worker", "beat", "indexer"}
    assert expected <= set(SERVICES)


@pytest.mark.parametrize("name", [n for n in TUITION_SERVICES if n != "chain"])
def test_service_command_is_a_real_cli_command(name: str) -> None:
    args = _command(SERVICES[name])
    assert args[0] == "tuition", f"{name} should run the tuition CLI"
    group: Any = get_command(app)
    words = [a for a in args[1:] if not a.startswith("-")]
    for word in words:
        if not hasattr(group, "commands") or word not in group.commands:
            break
        group = group.commands[word]
    assert not hasattr(group, "commands"), f"{name}: {args} does not name a command"
    options = {opt for param in group.params for opt in getattr(param, "opts", [])}
    for arg in args[1:]:
        if arg.startswith("--"):
            assert arg.split("=")[0] in options, f"{name}: unknown option {arg}"


def test_chain_service_runs_anvil_from_the_npm_package() -> None:
    args = _command(SERVICES["chain"])
    assert args[0] == "node_modules/.bin/anvil"
    assert (ROOT / "package.json").read_text().count("@foundry-rs/anvil-linux-amd64") == 1


def settings_env_names() -> set[str]:
    """Every TUITION_* name the settings read: flat ones, and TUITION_<GROUP>_<FIELD>."""
    names = set()
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names |= {f"TUITION_{name}_{sub}".upper() for sub in group.model_fields}
        else:
            names.add(f"TUITION_{name.upper()}")
    return names


def test_settings_env_names_cover_the_component_groups() -> None:
    # That each name lands in its field is tests/backend/test_settings.py's job.
    names = settings_env_names()
    assert {"TUITION_DATABASE_URL", "TUITION_WORKER_STATE_DIR"} <= names
    assert {"TUITION_INDEXER_REORG_WINDOW", "TUITION_WORKER_SMTP_PASSWORD"} <= names
    assert "TUITION_WORKER" not in names


def test_environment_variables_match_settings() -> None:
    fields = settings_env_names()
    for name in TUITION_SERVICES:
        env = SERVICES[name].get("environment", {})
        for key in env:
            if key.startswith("TUITION_"):
                assert key in fields, f"{name}: {key} is not a setting"


def test_devstack_variables_are_settings() -> None:
    # `tuition up` hands these to the API, worker and indexer it starts.
    source = (ROOT / "backend" / "devstack.py").read_text()
    used = set(re.findall(r'"(TUITION_[A-Z0-9_]+)"', source))
    assert "TUITION_WORKER_STATE_DIR" in used
    assert used <= settings_env_names()


def test_required_secrets_have_no_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("TUITION_SECRET_KEY", "TUITION_STRIPE_WEBHOOK_SECRET", "POSTGRES_PASSWORD"):
        assert re.search(rf"\$\{{{secret}:\?", text), f"{secret} must be required"
