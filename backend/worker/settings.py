"""The worker's own knobs, read from `TUITION_WORKER_*` env vars (and `.env`).

They live here rather than in the shared `Settings` because nothing but the worker reads them;
the shared settings still provide the database, Redis, chain and operator key.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.core.config import PROJECT_ROOT, Settings, get_settings


class WorkerSettings(BaseSettings):
    """Configuration of the Celery worker, beat and the task bodies."""

    model_config = SettingsConfigDict(
        env_prefix="TUITION_WORKER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Broker: explicit URLs win; otherwise Redis when TUITION_REDIS_URL is set, else the embedded
    # SQLite-backed transport that needs no server.
    broker_url: str | None = None
    result_backend: str | None = None
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
    retry_backoff_max: int = 300
    reconcile_batch: int = 200
    # Entitlements changed more recently than this are not judged: their chain write may still
    # be on its way through the outbox.
    reconcile_grace: float = 600.0
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


@lru_cache
def get_worker_settings() -> WorkerSettings:
    """The process-wide worker settings (tests call `get_worker_settings.cache_clear()`)."""
    return WorkerSettings()


def broker_urls(
    settings: Settings | None = None, worker: WorkerSettings | None = None
) -> tuple[str, str]:
    """The (broker URL, result backend URL) this process uses.

    Redis when `TUITION_REDIS_URL` is set; otherwise Kombu's SQLAlchemy transport on a SQLite file
    and Celery's database result backend on another, both under `var/`, so a fresh checkout runs
    the worker with no server at all.
    """
    settings = settings or get_settings()
    worker = worker or get_worker_settings()
    if settings.redis_url:
        default_broker = default_backend = settings.redis_url
    else:
        state = worker.state_dir
        state.mkdir(parents=True, exist_ok=True)
        default_broker = f"sqla+sqlite:///{state / 'celery-broker.sqlite'}"
        default_backend = f"db+sqlite:///{state / 'celery-results.sqlite'}"
    return worker.broker_url or default_broker, worker.result_backend or default_backend
