"""docker-compose.yml, validated by a real Compose implementation (Debian's docker-compose,
installed by scripts/setup; `config` needs no engine), and the settings each service would
start with, built from exactly the environment the interpolated file gives it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError
from typer.main import get_command

from backend.cli import app
from backend.core.config import ROLE_SECRETS, ConfigurationError, Settings
from backend.core.dev_accounts import DEMO_KEYS

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "docker-compose.yml"
ANVIL = ROOT / "docker-compose.anvil.yml"
EXAMPLE = ROOT / ".env.example"
COMPOSE = yaml.safe_load(BASE.read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
TUITION_SERVICES = [name for name, svc in SERVICES.items() if svc.get("image") == "tuition:latest"]

# What an operator puts in .env instead of the example's placeholders.
REAL_VALUES = {
    "POSTGRES_PASSWORD": "pg-8c1f0e2a9b",
    "REDIS_PASSWORD": "redis-5d7a3c1e",
    "TUITION_OPERATOR_PRIVATE_KEY": "0x" + "12" * 32,
    "TUITION_DEPLOYER_PRIVATE_KEY": "0x" + "34" * 32,
    "TUITION_STRIPE_SECRET_KEY": "sk_live_51abc",
    "TUITION_STRIPE_WEBHOOK_SECRET": "whsec_9f8e7d",
    "TUITION_RPC_URL": "https://polygon.rpc.example.net/v1/key",
}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def _example(**changes: str | None) -> str:
    """.env.example with `changes` applied (None drops the variable)."""
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in changes:
            if changes[name] is not None:
                lines.append(f"{name}={changes[name]}")
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def compose(
    tmp_path: Path, env_text: str, *files: Path, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of `files` with `env_text` as the .env, in a clean environment."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: scripts/setup installs Debian's package")
    env_file = tmp_path / "env"
    env_file.write_text(env_text)
    args = [binary, "--env-file", str(env_file)]
    for file in files or (BASE,):
        args += ["-f", str(file)]
    args += ["config", "-q"] if quiet else ["config"]
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    return subprocess.run(
        args, capture_output=True, text=True, env=clean, cwd=ROOT, timeout=120, check=False
    )


def configured(tmp_path: Path, env_text: str, *files: Path) -> dict[str, Any]:
    result = compose(tmp_path, env_text, *files)
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return services


def _role(service: dict[str, Any]) -> str:
    args = _command(service)
    assert args[0] == "tuition"
    role = args[1]
    assert role in ROLE_SECRETS, f"{args} names no role of backend.core.config.ROLE_SECRETS"
    return role


def settings_of(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp: Path) -> Settings:
    """Settings() with exactly the service's environment (nothing inherited, no .env file)."""
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TUITION_"):
                patch.delenv(name)
        for name, value in (service.get("environment") or {}).items():
            patch.setenv(name, "" if value is None else str(value))
        patch.chdir(tmp)
        return Settings()


def test_both_compose_shapes_are_valid(tmp_path: Path) -> None:
    for files in [(BASE,), (BASE, ANVIL)]:
        result = compose(tmp_path, _example(**REAL_VALUES), *files, quiet=True)
        assert result.returncode == 0, f"{[f.name for f in files]}: {result.stderr}"


def test_the_validator_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        BASE.read_text().replace("service_completed_successfully", "service_finished", 1)
    )
    result = compose(tmp_path, _example(**REAL_VALUES), broken, quiet=True)
    assert result.returncode != 0
    assert "service_finished" in result.stderr


def test_a_missing_required_variable_stops_compose_with_its_name(tmp_path: Path) -> None:
    result = compose(
        tmp_path, _example(**(REAL_VALUES | {"TUITION_STRIPE_SECRET_KEY": None})), quiet=True
    )
    assert result.returncode != 0
    assert "set TUITION_STRIPE_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("shape", ["production", "anvil"])
def test_every_service_starts_with_the_environment_compose_gives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    files = (BASE,) if shape == "production" else (BASE, ANVIL)
    values: dict[str, str | None] = dict(REAL_VALUES)
    if shape == "anvil":  # the throwaway chain: anvil's well-known keys, the chain service's URL
        values |= {
            "TUITION_OPERATOR_PRIVATE_KEY": DEMO_KEYS["operator"],
            "TUITION_DEPLOYER_PRIVATE_KEY": DEMO_KEYS["admin"],
            "TUITION_RPC_URL": "http://chain:8545",
            "TUITION_NETWORK": "local",
            "TUITION_CHAIN_ID": "31337",
        }
    services = configured(tmp_path, _example(**values), *files)
    checked = []
    for name, service in services.items():
        if service.get("image") != "tuition:latest" or name == "chain":
            continue
        settings = settings_of(service, monkeypatch, tmp_path)
        assert settings.env == ("production" if shape == "production" else "development")
        settings.require(_role(service))  # type: ignore[arg-type]
        checked.append(name)
    assert set(checked) == {"migrate", "deploy", "api", "worker", "beat", "indexer"}


def test_each_service_gets_only_the_secrets_its_role_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = configured(tmp_path, _example(**REAL_VALUES))
    secret_names = {
        "TUITION_OPERATOR_PRIVATE_KEY": "operator_private_key",
        "TUITION_DEPLOYER_PRIVATE_KEY": "deployer_private_key",
        "TUITION_STRIPE_SECRET_KEY": "stripe_secret_key",
        "TUITION_STRIPE_WEBHOOK_SECRET": "stripe_webhook_secret",
    }
    for name in TUITION_SERVICES:
        env = services[name].get("environment") or {}
        given = {secret_names[k] for k in env if k in secret_names}
        assert given == set(ROLE_SECRETS[_role(services[name])]), name
        uses_redis = _role(services[name]) in ("api", "worker", "beat")
        assert ("TUITION_REDIS_URL" in env) == uses_redis, name
        assert ("TUITION_DATABASE_URL" in env) == (name != "beat" and name != "deploy"), name


def test_the_example_env_as_is_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Copying .env.example without editing it must not start anything in production.
    services = configured(tmp_path, EXAMPLE.read_text())
    for name in ("api", "worker", "deploy", "migrate"):
        with pytest.raises((ValidationError, ConfigurationError)):
            settings_of(services[name], monkeypatch, tmp_path).require(_role(services[name]))  # type: ignore[arg-type]


def test_only_the_load_balancer_publishes_a_port() -> None:
    published = {name for name, svc in SERVICES.items() if svc.get("ports")}
    assert published == {"lb"}
    assert SERVICES["lb"]["image"].startswith("nginx:")
    assert SERVICES["lb"]["depends_on"]["api"]["condition"] == "service_healthy"
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server api:8000 resolve max_fails=\d+", conf)
    assert "proxy_set_header X-Request-ID" in conf
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in SERVICES["lb"]["volumes"]


def test_services_wait_for_what_they_need() -> None:
    for name in ("api", "worker", "beat", "indexer"):
        deps = SERVICES[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["deploy"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    anvil = yaml.safe_load(ANVIL.read_text())["services"]
    for name in ("deploy", "api", "worker", "indexer"):
        assert anvil[name]["depends_on"]["chain"]["condition"] == "service_healthy", name


def test_api_healthcheck_is_readiness() -> None:
    assert "/readyz" in " ".join(SERVICES["api"]["healthcheck"]["test"])


def test_every_service_has_a_healthcheck_or_runs_once() -> None:
    for name, service in SERVICES.items():
        runs_once = service.get("restart") == "no"
        assert runs_once or "healthcheck" in service, f"{name} has no healthcheck"


def test_no_secret_is_written_in_the_compose_files() -> None:
    for file in (BASE, ANVIL):
        for line in file.read_text().splitlines():
            match = re.match(r"\s*([A-Z_]*(?:KEY|SECRET|PASSWORD)[A-Z_]*):\s*(.*)$", line)
            if match:
                assert match.group(2).startswith("${"), f"{file.name}: {line.strip()}"


def compose_variables() -> set[str]:
    text = BASE.read_text() + ANVIL.read_text()
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))


def test_env_example_lists_every_variable_compose_reads() -> None:
    listed = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", EXAMPLE.read_text(), re.MULTILINE))
    assert compose_variables() <= listed
    assert listed - compose_variables() <= {"COMPOSE_FILE"}


def test_readme_configuration_table_has_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    for name in compose_variables():
        assert f"| `{name}` |" in table, name


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
    options = {
        opt
        for param in group.params
        for opt in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    }
    for arg in args[1:]:
        if arg.startswith("--"):
            assert arg.split("=")[0] in options, f"{name}: unknown option {arg}"


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
        for key in SERVICES[name].get("environment", {}):
            assert key in fields, f"{name}: {key} is not a setting"


def test_devstack_variables_are_settings() -> None:
    # `tuition up` hands these to the API, worker and indexer it starts.
    source = (ROOT / "backend" / "devstack.py").read_text()
    used = set(re.findall(r'"(TUITION_[A-Z0-9_]+)"', source))
    assert "TUITION_WORKER_STATE_DIR" in used
    assert used <= settings_env_names()
