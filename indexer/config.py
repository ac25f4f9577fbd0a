"""Indexer-only settings (`TUITION_INDEXER_*`); chain and database settings come from
`backend.core.config.Settings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexerSettings(BaseSettings):
    """Tuning of the indexer process."""

    model_config = SettingsConfigDict(
        env_prefix="TUITION_INDEXER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Blocks kept to detect and undo reorgs; a deeper reorg halts the indexer.
    reorg_window: int = Field(64, ge=1)
    # Confirmations before a purchase grants access (0: at once, undone by reorg handling).
    access_confirmations: int = Field(0, ge=0)
    # Confirmations before orders and certificates count as confirmed (reports, certificates).
    confirmations: int = Field(12, ge=0)
    # Polling interval in seconds when there is no newHeads subscription.
    poll_interval: float = Field(0.1, gt=0)
    # eth_getLogs ranges: first size, bounds, and the number of logs a response should carry.
    initial_range: int = Field(2_000, ge=1)
    min_range: int = Field(1, ge=1)
    max_range: int = Field(100_000, ge=1)
    target_logs: int = Field(10_000, ge=1)
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
