"""The one settings class: flat and nested env names, `.env`, placeholder secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from backend.core.config import IndexerSettings, Settings, WorkerSettings

PRODUCTION = {
    "TUITION_ENV": "production",
    "TUITION_SECRET_KEY": "a-real-secret",
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
    assert settings.database_url == "postgresql://db/x"
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

    monkeypatch.delenv("TUITION_SECRET_KEY")
    with pytest.raises(ValidationError, match="TUITION_SECRET_KEY"):
        Settings()


def test_development_accepts_the_placeholders() -> None:
    settings = Settings(worker=WorkerSettings(smtp_password=SecretStr("change-me")))
    assert settings.env == "development"
