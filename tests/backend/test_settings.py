"""The one settings class: flat and nested env names, `.env`, placeholder secrets."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from backend.core.config import (
    ConfigurationError,
    IndexerSettings,
    Role,
    Settings,
    WorkerSettings,
)
from backend.core.dev_accounts import DEMO_KEYS

PRODUCTION = {
    "TUITION_ENV": "production",
    "TUITION_STRIPE_SECRET_KEY": "sk_live_x",
    "TUITION_STRIPE_WEBHOOK_SECRET": "whsec_x",
    "TUITION_OPERATOR_PRIVATE_KEY": "0x" + "12" * 32,
    "TUITION_DEPLOYER_PRIVATE_KEY": "0x" + "34" * 32,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TUITION_* from the outer environment, and no stray `.env` in the working directory."""
    for name in list(os.environ):
        if name.startswith("TUITION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_component_variables_land_in_their_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUITION_INDEXER_REORG_WINDOW", "7")
    monkeypatch.setenv("TUITION_INDEXER_DEPLOYMENT_FILE", "/tmp/x.json")
    monkeypatch.setenv("TUITION_WORKER_RECEIPT_TIMEOUT", "2.5")
    monkeypatch.setenv("TUITION_WORKER_SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("TUITION_WORKER_CONFIRMATIONS", "3")
    monkeypatch.setenv("TUITION_DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("TUITION_STRIPE_API_VERSION", "2025-01-01")

    settings = Settings()

    assert settings.indexer.reorg_window == 7
    assert settings.indexer.deployment_file == Path("/tmp/x.json")
    assert settings.indexer.confirmations == IndexerSettings().confirmations  # not the worker's
    assert settings.worker.receipt_timeout == 2.5
    assert settings.worker.confirmations == 3
    assert settings.worker.smtp_password is not None
    assert settings.worker.smtp_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)
    # Flat names with underscores are not split into groups.
    assert settings.database_url.get_secret_value() == "postgresql://db/x"
    assert settings.stripe_api_version == "2025-01-01"
    # Untouched fields keep their defaults.
    assert settings.worker.queue == WorkerSettings().queue


def test_dotenv_file_feeds_flat_and_nested_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "TUITION_NETWORK=dotenv\nTUITION_WORKER_QUEUE=from-file\nTUITION_INDEXER_CONFIRMATIONS=5\n"
    )
    monkeypatch.setenv("TUITION_INDEXER_CONFIRMATIONS", "6")  # the environment wins
    settings = Settings()
    assert settings.network == "dotenv"
    assert settings.worker.queue == "from-file"
    assert settings.indexer.confirmations == 6


def test_nested_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUITION_INDEXER_REORG_WINDOW", "0")
    with pytest.raises(ValidationError, match="reorg_window"):
        Settings()


def test_production_refuses_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    assert Settings().env == "production"  # real secrets, no SMTP password: fine

    monkeypatch.setenv("TUITION_WORKER_SMTP_PASSWORD", "change-me")
    with pytest.raises(ValidationError, match="TUITION_WORKER_SMTP_PASSWORD"):
        Settings()
    monkeypatch.setenv("TUITION_WORKER_SMTP_PASSWORD", "a-real-password")
    assert Settings().worker.smtp_password is not None

    # A placeholder given on purpose is refused whatever the process (an example copied as is).
    monkeypatch.setenv("TUITION_DEPLOYER_PRIVATE_KEY", DEMO_KEYS["admin"])
    with pytest.raises(ValidationError, match="TUITION_DEPLOYER_PRIVATE_KEY"):
        Settings()


@pytest.mark.parametrize(
    ("api_base", "accepted"),
    [
        ("http://127.0.0.1:12111", True),
        ("http://localhost:12111", True),
        ("https://stripe-fake.internal", False),
        ("http://10.0.0.5:12111", False),
    ],
)
def test_production_talks_to_a_stripe_stand_in_only_on_loopback(
    monkeypatch: pytest.MonkeyPatch, api_base: str, accepted: bool
) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TUITION_STRIPE_API_BASE", api_base)
    if accepted:
        assert Settings().stripe_api_base == api_base
    else:
        with pytest.raises(ValidationError, match="TUITION_STRIPE_API_BASE"):
            Settings()


@pytest.mark.parametrize(
    ("role", "needs"),
    [
        ("api", {"TUITION_STRIPE_SECRET_KEY", "TUITION_STRIPE_WEBHOOK_SECRET"}),
        ("worker", {"TUITION_OPERATOR_PRIVATE_KEY", "TUITION_STRIPE_SECRET_KEY"}),
        ("beat", set()),
        ("indexer", set()),
        ("db", set()),
        ("deploy", {"TUITION_DEPLOYER_PRIVATE_KEY", "TUITION_OPERATOR_PRIVATE_KEY"}),
    ],
)
def test_each_role_requires_exactly_the_secrets_it_uses(
    monkeypatch: pytest.MonkeyPatch, role: Role, needs: set[str]
) -> None:
    monkeypatch.setenv("TUITION_ENV", "production")
    for name in needs:
        monkeypatch.setenv(name, PRODUCTION[name])
    assert Settings().require(role).env == "production"  # nothing else is asked for

    for name in needs:  # each one it uses is required, by name
        monkeypatch.delenv(name)
        with pytest.raises(ConfigurationError, match=name):
            Settings().require(role)
        monkeypatch.setenv(name, PRODUCTION[name])


def test_roles_are_not_checked_outside_production() -> None:
    assert Settings().require("deploy").env == "development"


def test_urls_with_passwords_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUITION_DATABASE_URL", "postgresql://tuition:pg-pass@db/tuition")
    monkeypatch.setenv("TUITION_REDIS_URL", "redis://:redis-pass@redis:6379/0")
    monkeypatch.setenv("TUITION_WORKER_BROKER_URL", "amqp://u:mq-pass@mq//")
    settings = Settings()
    for password in ("pg-pass", "redis-pass", "mq-pass"):
        assert password not in repr(settings)
        assert password not in str(settings.model_dump())
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value().endswith("@redis:6379/0")


def test_development_accepts_the_placeholders() -> None:
    settings = Settings(worker=WorkerSettings(smtp_password=SecretStr("change-me")))
    assert settings.env == "development"


ETHEREUM = {
    "name": "ethereum",
    "chain_id": 1,
    "rpc_url": "https://eth.example",
    "confirmations": 12,
    "reorg_window": 64,
    "explorer_url": "https://etherscan.io",
}
POLYGON = {
    "name": "polygon",
    "chain_id": 137,
    "rpc_url": "https://polygon.example",
    "ws_url": "wss://polygon.example",
    "native_symbol": "POL",
    "confirmations": 128,
    "reorg_window": 256,
    "block_time": 2,
}


def test_networks_list_selects_the_chain_and_its_indexer_tuning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUITION_NETWORKS", json.dumps([ETHEREUM, POLYGON]))

    first = Settings()
    polygon = first.for_network("polygon")

    assert (first.network, first.chain_id, first.rpc_url) == ("ethereum", 1, "https://eth.example")
    assert first.chain_ids == {1, 137}
    assert (polygon.network, polygon.chain_id, polygon.ws_url) == (
        "polygon",
        137,
        "wss://polygon.example",
    )
    assert (polygon.indexer.confirmations, polygon.indexer.reorg_window) == (128, 256)
    assert polygon.deployment_file.name == "polygon.json"
    assert polygon.current_network.native_symbol == "POL"
    assert first.indexer.reorg_window == 64  # the copy did not change the original
    monkeypatch.setenv("TUITION_NETWORK", "polygon")
    assert Settings().chain_id == 137


def test_without_networks_the_single_chain_variables_make_one_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUITION_CHAIN_ID", "80002")
    monkeypatch.setenv("TUITION_NETWORK", "amoy")
    monkeypatch.setenv("TUITION_INDEXER_REORG_WINDOW", "5")

    settings = Settings()

    assert [(n.name, n.chain_id) for n in settings.networks] == [("amoy", 80002)]
    assert settings.indexer.reorg_window == 5  # kept as given
    assert settings.for_network("amoy").chain_id == 80002


@pytest.mark.parametrize(
    ("networks", "extra", "message"),
    [
        ([ETHEREUM, {**POLYGON, "chain_id": 1}], {}, "duplicate chain_id 1"),
        ([ETHEREUM, {**POLYGON, "name": "ethereum"}], {}, "duplicate name ethereum"),
        ([ETHEREUM, POLYGON], {"TUITION_NETWORK": "base"}, "unknown network 'base'"),
        ([ETHEREUM], {"TUITION_CHAIN_ID": "137"}, "TUITION_CHAIN_ID disagrees"),
        ([{**POLYGON, "reorg_window": 64}], {}, "reorg_window (64) must be at least"),
        ([{**ETHEREUM, "name": "Main Net"}], {}, "name"),
    ],
)
def test_inconsistent_networks_are_refused(
    monkeypatch: pytest.MonkeyPatch, networks: list[object], extra: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("TUITION_NETWORKS", json.dumps(networks))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings()


def test_unknown_network_for_a_process_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUITION_NETWORKS", json.dumps([ETHEREUM, POLYGON]))

    with pytest.raises(ConfigurationError, match="unknown network 'base'"):
        Settings().for_network("base")
