"""Settings: one pydantic-settings object, read from `TUITION_*` env vars and `.env`.

The worker's and the indexer's own knobs are nested groups of it (`Settings.worker`,
`Settings.indexer`), read from `TUITION_WORKER_<FIELD>` and `TUITION_INDEXER_<FIELD>`.

Each process needs only some of the secrets: `Settings.require(role)` is called by each process's
entry point (`tuition api`, `worker`, `beat`, `indexer`, `deploy`, `db`) and refuses to start in
production when a secret that role uses is missing or a development placeholder (`ROLE_SECRETS`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.core.dev_accounts import DEMO_KEYS

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Values that ship in the repo for local development; refused outside development.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "change-me",
        "dev-secret-change-me",
        "sk_test_local",
        "whsec_local",
        # anvil's well-known default accounts (public test keys)
        *DEMO_KEYS.values(),
    }
)


# Role (the CLI command that starts the process) -> the secrets it uses. Anything not listed is
# never read by that role, so a compose service need not (and should not) be given it.
Role = Literal["api", "worker", "beat", "indexer", "deploy", "db"]
ROLE_SECRETS: dict[str, tuple[str, ...]] = {
    # Creates Checkout Sessions and refunds; verifies webhook signatures.
    "api": ("stripe_secret_key", "stripe_webhook_secret"),
    # Sends the outbox's transactions; asks Stripe when reconciling and expiring card orders.
    "worker": ("operator_private_key", "stripe_secret_key"),
    "beat": (),  # only enqueues
    "indexer": (),  # reads the chain, writes the database
    # Deploys as the contracts' admin and grants the operator its roles.
    "deploy": ("deployer_private_key", "operator_private_key"),
    "db": (),
}
SECRET_ENV = {
    "stripe_secret_key": "TUITION_STRIPE_SECRET_KEY",
    "stripe_webhook_secret": "TUITION_STRIPE_WEBHOOK_SECRET",
    "operator_private_key": "TUITION_OPERATOR_PRIVATE_KEY",
    "deployer_private_key": "TUITION_DEPLOYER_PRIVATE_KEY",
}


class ConfigurationError(RuntimeError):
    """The settings cannot run this process (a role's secret missing in production)."""


class WorkerSettings(BaseModel):
    """The Celery worker, beat and task bodies (`TUITION_WORKER_<FIELD>`).

    The database, Redis, chain and operator key come from the shared settings.
    """

    # Broker: explicit URLs win; otherwise Redis when TUITION_REDIS_URL is set, else the embedded
    # SQLite-backed transport that needs no server.
    broker_url: SecretStr | None = None  # may hold a password
    result_backend: SecretStr | None = None
    state_dir: Path = PROJECT_ROOT / "var"
    # Redis re-delivers an unacknowledged message after this many seconds: it must exceed the
    # longest task (`task_time_limit`), or a slow task would run twice concurrently.
    visibility_timeout: int = 3600
    task_time_limit: int = 600
    queue: str = "tuition"
    # Prefix of every Redis key the broker writes (lets several stacks share one Redis db).
    redis_key_prefix: str | None = None

    # Certificates (mint or voucher is decided per certificate row by the backend)
    voucher_ttl: int = 30 * 24 * 3600  # seconds a claim voucher stays valid

    # Transactions
    receipt_timeout: float = 60.0  # how long one task run waits for a receipt before retrying
    stuck_after: float = 90.0  # seconds without a receipt before a re-send with bumped fees
    fee_bump_percent: int = 25  # nodes require >= 10 % to replace a pending transaction
    max_fee_per_gas_cap: int = 500 * 10**9  # never bid above this (wei)
    confirmations: int = 0  # blocks on top of the receipt's block before an effect counts

    # Beat cadence (seconds)
    relay_interval: float = 1.0
    recover_interval: float = 30.0
    resume_interval: float = 60.0
    reconcile_interval: float = 300.0
    # A job untouched this long is re-enqueued by `resume_stalled`; longer than any task run plus
    # its longest retry back-off, or healthy jobs would be duplicated (harmless, but wasted).
    stalled_after: float = 900.0
    # Every task-running worker process writes a heartbeat this often; a running job whose
    # process has not beaten for `orphan_grace` seconds (killed) is re-published (checked every
    # `resume_interval`) instead of waiting `stalled_after`. Keep the grace several intervals.
    heartbeat_interval: float = Field(default=3.0, gt=0)
    orphan_grace: float = 10.0
    # A retry or re-check message not run this long after it was due was dropped (Celery drops
    # the ones it holds when its broker connection resets) and is re-published.
    late_after: float = Field(default=60.0, gt=0)
    retry_backoff_max: int = 300
    reconcile_batch: int = 200
    # Entitlements changed more recently than this are not judged: their chain write may still
    # be on its way through the outbox.
    reconcile_grace: float = 600.0
    # Blocks of the market's grant and purchase logs scanned per run for access the database
    # does not know (within hosted RPCs' common eth_getLogs range cap).
    reconcile_blocks: int = Field(default=10_000, ge=1)
    alive_file: Path = Path("/tmp/tuition-beat.alive")  # noqa: S108 - the compose healthcheck

    # Outbox
    outbox_batch: int = 100

    # Email: "file" writes .eml files (default), "console" logs them, "smtp" sends them.
    email_backend: Literal["file", "console", "smtp"] = "file"
    mail_dir: Path = PROJECT_ROOT / "var" / "mail"
    mail_from: str = "Tuition <receipts@tuition.local>"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    # A receipt claimed this long ago and never marked sent (its worker died) is sent again.
    receipt_claim_lease: float = 300.0

    # Metrics: a Prometheus endpoint in the worker's main process when set.
    metrics_port: int | None = None

    # Test hook only: sleep this many seconds after a transaction was broadcast and recorded but
    # before its receipt is awaited, so a crash test can kill the worker in that window.
    test_pause_after_send: float = 0.0


class IndexerSettings(BaseModel):
    """Tuning of the indexer process (`TUITION_INDEXER_<FIELD>`)."""

    # Blocks kept to detect and undo reorgs; a deeper reorg halts the indexer.
    reorg_window: int = Field(64, ge=1)
    # Confirmations before a purchase grants access (0: at once, undone by reorg handling).
    access_confirmations: int = Field(0, ge=0)
    # Confirmations before orders and certificates count as confirmed (reports, certificates).
    confirmations: int = Field(12, ge=0)
    # Polling interval in seconds when there is no newHeads subscription.
    poll_interval: float = Field(0.1, gt=0)
    # When polling, sleep through most of the chain's block time after each new block (a call
    # per poll is billed by hosted providers); poll at `poll_interval` only when one is due.
    poll_by_block_time: bool = True
    # eth_getLogs ranges: first size, bounds, and the number of logs a response should carry.
    initial_range: int = Field(2_000, ge=1)
    min_range: int = Field(1, ge=1)
    max_range: int = Field(100_000, ge=1)
    target_logs: int = Field(10_000, ge=1)
    # eth_getLogs ranges in flight at once while backfilling (their round trips overlap; the
    # results are still applied in block order).
    fetch_concurrency: int = Field(4, ge=1, le=16)
    # Blocks fetched per JSON-RPC batch near the head (headers, then logs by block hash).
    head_batch: int = Field(100, ge=1)
    rpc_timeout: float = Field(30.0, gt=0)
    # Prometheus metrics HTTP port (none: not served).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Start at this block instead of the deployment's deployBlock (first run only).
    start_block: int | None = None
    # Override the deployment file (default: settings.deployment_file).
    deployment_file: Path | None = None
    # Standby: seconds between attempts to become the active indexer.
    standby_interval: float = Field(1.0, gt=0)
    # Rich progress bar while backfilling (auto: when stderr is a terminal).
    progress: bool | None = None


class NetworkSettings(BaseModel):
    """One chain Tuition runs on (an entry of `TUITION_NETWORKS`, a JSON list).

    Each network has its own deployment file (`deployments/<name>.json`), indexer (with its own
    hot-standby lock and checkpoint) and transaction nonce stream; on-chain facts in the database
    carry its chain id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    chain_id: int = Field(gt=0)
    rpc_url: str
    ws_url: str | None = None
    # What the browser's wallet is asked to add (`wallet_addEthereumChain`) and reads through.
    public_rpc_url: str | None = None
    chain_name: str | None = None
    native_symbol: str | None = None  # None: the known chain's (ETH, POL...), else ETH
    native_name: str | None = None
    native_decimals: int = Field(18, ge=0, le=36)
    # Confirmations before orders and certificates count as final, and before a purchase grants
    # access (0: at once, undone if reorged out); blocks kept to detect and undo reorgs.
    confirmations: int = Field(12, ge=0)
    access_confirmations: int = Field(0, ge=0)
    reorg_window: int = Field(64, ge=1)
    block_time: float = Field(12.0, gt=0)  # seconds; a hint for polling and "about N min" texts
    explorer_url: str | None = None

    @model_validator(mode="after")
    def _window_covers_confirmations(self) -> NetworkSettings:
        # A block must stay in the reorg window until it is final, or a reorg of a "final"
        # block could not be undone.
        if self.reorg_window < max(self.confirmations, self.access_confirmations):
            raise ValueError(
                f"network {self.name}: reorg_window ({self.reorg_window}) must be at least its "
                f"confirmations ({max(self.confirmations, self.access_confirmations)})"
            )
        return self


class Settings(BaseSettings):
    """Runtime configuration of every Tuition process (API, indexer, worker, CLI)."""

    model_config = SettingsConfigDict(
        env_prefix="TUITION_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # TUITION_WORKER_SMTP_PASSWORD -> worker.smtp_password: split once after the group name,
        # so the nested fields keep their underscores and flat names are never split.
        env_nested_delimiter="_",
        env_nested_max_split=1,
        # An empty value means unset (compose passes `${X:-}` as ""), so the default applies.
        env_ignore_empty=True,
    )

    env: Literal["development", "test", "production"] = "development"

    # Storage. SQLite by default so nothing needs installing; PostgreSQL in production. URLs may
    # carry passwords: secrets, never in reprs or logs.
    database_url: SecretStr = SecretStr(f"sqlite:///{PROJECT_ROOT / 'var' / 'tuition.db'}")
    database_pool_size: int = 10
    # A direct PostgreSQL connection for LISTEN (the access cache's invalidations) when
    # `database_url` goes through a transaction pooler such as PgBouncer, which cannot carry
    # LISTEN. Default: `database_url`.
    database_listen_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    # The access check's cache in each API process (PostgreSQL only; 0 entries turns it off).
    # Answers stay until a grant or revoke invalidates them through LISTEN/NOTIFY, and none is
    # served more than `access_cache_max_staleness` seconds after the listener last proved that
    # it hears every notification (backend/access/cache.py).
    access_cache_entries: int = Field(default=200_000, ge=0)
    access_cache_max_staleness: float = Field(default=1.0, gt=0, le=60)
    # `tuition backup`: where backups go, and how many of the newest are kept.
    backup_dir: Path = PROJECT_ROOT / "var" / "backups"
    backup_keep: int = Field(default=14, ge=1)

    # Chains. `networks` lists every chain served (JSON); `network` names the one this process
    # works on (`--network` of `tuition deploy`/`indexer`), the first by default. Without
    # `networks`, one network is made of `network`, `chain_id`, `rpc_url` and `ws_url` (and the
    # indexer's confirmations); with it, those four are filled from the chosen entry.
    networks: list[NetworkSettings] = Field(default_factory=list)
    rpc_url: str = "http://127.0.0.1:8545"
    ws_url: str | None = None
    chain_id: int = 31337
    network: str = "local"
    deployments_dir: Path = PROJECT_ROOT / "deployments"
    # The backend's hot wallet: OPERATOR on the market (card grants) and ISSUER on certificates.
    operator_private_key: SecretStr = SecretStr(DEMO_KEYS["operator"])
    # Only `tuition deploy` uses it: the contracts' admin (use a multisig's signer in production).
    deployer_private_key: SecretStr = SecretStr(DEMO_KEYS["admin"])

    # HTTP
    public_url: str = "http://localhost:8000"
    cors_origins: list[str] = Field(default_factory=list)
    session_ttl: int = 7 * 24 * 3600  # seconds
    cookie_secure: bool | None = None  # None: secure unless public_url is plain http
    # Peers whose X-Forwarded-For / -Proto uvicorn believes: the load balancer's address ("*"
    # only where nothing but the load balancer can reach the API, as in docker-compose.yml).
    forwarded_allow_ips: str = "127.0.0.1"
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
    # Card sales of a provider without a ready Stripe Connect account: refused when true (the
    # card price is not offered); when false the platform collects them and owes the provider.
    card_requires_connect: bool = True

    # Front end
    walletconnect_project_id: str | None = None

    # Certificate verification: where a provider's website names its issuer addresses
    # (`{domain}` is replaced; https only in production), and whether to look at all.
    domain_link_url: str = "https://{domain}/.well-known/tuition-issuer.json"
    domain_link: bool = True

    # Component groups
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    indexer: IndexerSettings = Field(default_factory=IndexerSettings)

    @model_validator(mode="after")
    def _resolve_networks(self) -> Settings:
        if not self.networks:
            # The single-chain form: its tuning is the indexer's own (already validated).
            self.networks = [
                NetworkSettings.model_construct(
                    name=self.network,
                    chain_id=self.chain_id,
                    rpc_url=self.rpc_url,
                    ws_url=self.ws_url,
                    confirmations=self.indexer.confirmations,
                    access_confirmations=self.indexer.access_confirmations,
                    reorg_window=self.indexer.reorg_window,
                )
            ]
            return self
        for attr in ("name", "chain_id"):
            values = [getattr(n, attr) for n in self.networks]
            if dupes := sorted({str(v) for v in values if values.count(v) > 1}):
                raise ValueError(f"TUITION_NETWORKS: duplicate {attr} {', '.join(dupes)}")
        if "network" not in self.model_fields_set:
            self.network = self.networks[0].name
        chosen = self.network_named(self.network)
        for name in ("chain_id", "rpc_url", "ws_url"):
            if name in self.model_fields_set and getattr(self, name) != getattr(chosen, name):
                raise ValueError(
                    f"TUITION_{name.upper()} disagrees with network {chosen.name} of "
                    "TUITION_NETWORKS: set it there"
                )
        self.chain_id, self.rpc_url, self.ws_url = chosen.chain_id, chosen.rpc_url, chosen.ws_url
        self.indexer = self.indexer.model_copy(
            update={
                "confirmations": chosen.confirmations,
                "access_confirmations": chosen.access_confirmations,
                "reorg_window": chosen.reorg_window,
            }
        )
        return self

    def network_named(self, name: str) -> NetworkSettings:
        """The configured network called `name`.

        Raises:
            ValueError: no such network (the message lists the configured ones).
        """
        for network in self.networks:
            if network.name == name:
                return network
        known = ", ".join(n.name for n in self.networks)
        raise ValueError(f"unknown network {name!r}: configured are {known}")

    def network_by_chain(self, chain_id: int) -> NetworkSettings | None:
        """The configured network of `chain_id`, if any."""
        return next((n for n in self.networks if n.chain_id == chain_id), None)

    @property
    def current_network(self) -> NetworkSettings:
        """The network this process works on (`TUITION_NETWORK`)."""
        return self.network_named(self.network)

    @property
    def chain_ids(self) -> frozenset[int]:
        """The chain ids of every configured network."""
        return frozenset(n.chain_id for n in self.networks)

    def for_network(self, name: str) -> Settings:
        """These settings working on network `name` (its chain, RPC, deployment, indexer tuning).

        Raises:
            ConfigurationError: no such network.
        """
        try:
            chosen = self.network_named(name)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        return self.model_copy(
            update={
                "network": chosen.name,
                "chain_id": chosen.chain_id,
                "rpc_url": chosen.rpc_url,
                "ws_url": chosen.ws_url,
                "indexer": self.indexer.model_copy(
                    update={
                        "confirmations": chosen.confirmations,
                        "access_confirmations": chosen.access_confirmations,
                        "reorg_window": chosen.reorg_window,
                    }
                ),
            }
        )

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Settings:
        if self.env != "production":
            return self
        # A secret given a development placeholder is refused whatever the role (someone copied
        # the example); one left unset is refused only by a role that uses it (`require`).
        given = {
            env: getattr(self, name)
            for name, env in SECRET_ENV.items()
            if name in self.model_fields_set
        }
        given["TUITION_WORKER_SMTP_PASSWORD"] = self.worker.smtp_password
        # The passwords in the storage URLs, too (the example .env's "change-me").
        for env, url in (
            ("TUITION_DATABASE_URL", self.database_url),
            ("TUITION_DATABASE_LISTEN_URL", self.database_listen_url),
            ("TUITION_REDIS_URL", self.redis_url),
        ):
            password = urlsplit(url.get_secret_value()).password if url is not None else None
            if password is not None:
                given[env] = SecretStr(password)
        bad = [name for name, value in given.items() if value is not None and _placeholder(value)]
        if bad:
            raise ValueError(
                "refusing to start in production with placeholder secrets: " + ", ".join(bad)
            )
        if self.stripe_api_base is not None and not _loopback(self.stripe_api_base):
            # The production shape on one machine (scripts/prod-local) talks to the Stripe
            # stand-in on loopback; a deployment can never reach another host's fake this way.
            raise ValueError(
                "TUITION_STRIPE_API_BASE is for tests and local fakes only (a loopback URL)"
            )
        if not self.domain_link_url.startswith("https://{domain}"):
            raise ValueError("TUITION_DOMAIN_LINK_URL must be https://{domain}/... in production")
        return self

    def require(self, role: Role) -> Settings:
        """Refuse to run `role` in production without the secrets it uses; returns self.

        Raises:
            ConfigurationError: naming every missing or placeholder variable.
        """
        if self.env != "production":
            return self
        if role not in ROLE_SECRETS:
            raise ConfigurationError(f"unknown role {role!r}")
        missing = [
            SECRET_ENV[name]
            for name in ROLE_SECRETS[role]
            if (value := getattr(self, name)) is None
            or name not in self.model_fields_set
            or _placeholder(value)
        ]
        if missing:
            raise ConfigurationError(
                f"refusing to start {role} in production: set " + ", ".join(missing)
            )
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


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def _placeholder(value: SecretStr) -> bool:
    return value.get_secret_value() in PLACEHOLDER_SECRETS


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests override with `get_settings.cache_clear()`)."""
    return Settings()
