"""Settings: one pydantic-settings object, read from `TUITION_*` env vars and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Values that ship in the repo for local development; refused outside development.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "change-me",
        "dev-secret-change-me",
        "sk_test_local",
        "whsec_local",
        # anvil's well-known default accounts #0 and #1 (public test keys)
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    }
)

ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


class Settings(BaseSettings):
    """Runtime configuration of every Tuition process (API, indexer, worker, CLI)."""

    model_config = SettingsConfigDict(
        env_prefix="TUITION_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"

    # Storage. SQLite by default so nothing needs installing; PostgreSQL in production.
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'tuition.db'}"
    database_pool_size: int = 10
    redis_url: str | None = None

    # Chain
    rpc_url: str = "http://127.0.0.1:8545"
    ws_url: str | None = None
    chain_id: int = 31337
    network: str = "local"
    deployments_dir: Path = PROJECT_ROOT / "deployments"
    # The backend's hot wallet: OPERATOR on the market (card grants) and ISSUER on certificates.
    operator_private_key: SecretStr = SecretStr(ANVIL_KEY_1)
    # Only `tuition deploy` uses it: the contracts' admin (use a multisig's signer in production).
    deployer_private_key: SecretStr = SecretStr(ANVIL_KEY_0)

    # HTTP
    public_url: str = "http://localhost:8000"
    cors_origins: list[str] = Field(default_factory=list)
    session_ttl: int = 7 * 24 * 3600  # seconds
    cookie_secure: bool | None = None  # None: secure unless public_url is plain http
    secret_key: SecretStr = SecretStr("dev-secret-change-me")
    # API: wallets with the admin role (JSON list), auth requests per minute per client IP,
    # extra ERC-20 tokens shown in prices (JSON list of {address, symbol, decimals, name}).
    admin_addresses: list[str] = Field(default_factory=list)
    auth_rate_limit: int = 30
    tokens: list[dict[str, str | int]] = Field(default_factory=list)

    # Stripe
    stripe_secret_key: SecretStr = SecretStr("sk_test_local")
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  # only for tests and the local Stripe stand-in
    stripe_api_version: str = "2024-06-20"

    # Front end
    walletconnect_project_id: str | None = None

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Settings:
        if self.env != "production":
            return self
        secrets = {
            "TUITION_SECRET_KEY": self.secret_key,
            "TUITION_STRIPE_SECRET_KEY": self.stripe_secret_key,
            "TUITION_STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
            "TUITION_OPERATOR_PRIVATE_KEY": self.operator_private_key,
            "TUITION_DEPLOYER_PRIVATE_KEY": self.deployer_private_key,
        }
        bad = [
            name
            for name, value in secrets.items()
            if value is None or value.get_secret_value() in PLACEHOLDER_SECRETS
        ]
        if bad:
            raise ValueError(
                "refusing to start in production with placeholder secrets: " + ", ".join(bad)
            )
        if self.stripe_api_base is not None:
            raise ValueError("TUITION_STRIPE_API_BASE is for tests and local fakes only")
        return self

    @property
    def secure_cookies(self) -> bool:
        """Whether session cookies carry the Secure flag."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return not self.public_url.startswith("http://")

    @property
    def deployment_file(self) -> Path:
        """The deployments/<network>.json written by the deploy script."""
        return self.deployments_dir / f"{self.network}.json"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests override with `get_settings.cache_clear()`)."""
    return Settings()
