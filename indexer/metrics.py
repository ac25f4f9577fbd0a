"""Prometheus metrics of the indexer, labelled by chain id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

HEAD_LAG = Gauge(
    "tuition_indexer_head_lag_blocks", "Blocks between the chain head and the checkpoint", ["chain"]
)
CHECKPOINT = Gauge("tuition_indexer_checkpoint_block", "Last processed block", ["chain"])
EVENTS = Counter("tuition_indexer_events_applied", "Logs applied, by event", ["chain", "event"])
UNDONE = Counter(
    "tuition_indexer_events_undone", "Logs undone by reorgs, by event", ["chain", "event"]
)
BAD_LOGS = Counter("tuition_indexer_bad_logs", "Logs that could not be decoded", ["chain"])
REORGS = Counter("tuition_indexer_reorgs", "Reorgs handled", ["chain"])
REORG_DEPTH = Gauge("tuition_indexer_last_reorg_depth", "Depth of the last reorg", ["chain"])
HALTED = Gauge(
    "tuition_indexer_halted", "1 when halted by a reorg deeper than the window", ["chain"]
)
LAST_BLOCK_TS = Gauge(
    "tuition_indexer_last_block_timestamp_seconds", "Timestamp of the last applied block", ["chain"]
)
RANGE_ERRORS = Counter(
    "tuition_indexer_range_errors", "eth_getLogs ranges refused by the node", ["chain"]
)
ACTIVE = Gauge("tuition_indexer_active", "1 when this process holds the indexing lock", ["chain"])


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on `host:port` (a daemon thread)."""
    start_http_server(port, addr=host)
