"""Prometheus metrics of the worker (served by `tuition worker --metrics-port`).

With the prefork pool each child counts its own tasks; `PROMETHEUS_MULTIPROC_DIR` makes
prometheus-client aggregate them (see `serve`).
"""

from __future__ import annotations

import logging
import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    start_http_server,
)

log = logging.getLogger(__name__)

TASKS = Counter("tuition_worker_tasks_total", "Task runs by outcome.", ["task", "outcome"])
OUTBOX_PUBLISHED = Counter("tuition_outbox_published_total", "Outbox events relayed.", ["topic"])
OUTBOX_LAG = Gauge(
    "tuition_outbox_lag_seconds",
    "Age of the oldest unpublished outbox event at the last relay run.",
    multiprocess_mode="max",
)
OUTBOX_PENDING = Gauge(
    "tuition_outbox_pending",
    "Unpublished outbox events at the last relay run.",
    multiprocess_mode="max",
)
TX_SENT = Counter("tuition_tx_broadcast_total", "Transactions accepted by the node.")
TX_RESENT = Counter("tuition_tx_resent_total", "Transactions re-signed.", ["reason"])
TX_MINED = Counter("tuition_tx_settled_total", "Transactions settled.", ["status"])
NONCE_RESYNCS = Counter("tuition_nonce_resync_total", "Nonce re-syncs from the chain.")
RPC_ERRORS = Counter("tuition_worker_rpc_errors_total", "RPC transport errors.")
RECEIPTS_SENT = Counter("tuition_receipts_sent_total", "Receipt emails sent.", ["kind"])
DRIFT = Counter("tuition_reconcile_drift_total", "Drift found by reconciliation.", ["kind"])
RECONCILE_CHECKED = Counter("tuition_reconcile_checked_total", "Entitlements compared.")
TX_IN_FLIGHT = Gauge(
    "tuition_tx_in_flight",
    "The operator key's signed, unsettled transactions at the last recovery run.",
    ["chain"],
    multiprocess_mode="max",
)
TX_OLDEST_IN_FLIGHT = Gauge(
    "tuition_tx_oldest_in_flight_seconds",
    "Age of the oldest unsettled transaction at the last recovery run (0: none).",
    ["chain"],
    multiprocess_mode="max",
)

# Series the alert rules (deploy/prometheus/alerts.yml) select by label exist from the start at
# 0, so a rate over them is 0 rather than no data until the first failure.
for _task in ("tuition.mint_certificate", "tuition.record_access_grant"):
    for _outcome in ("succeeded", "failed", "retried"):
        TASKS.labels(task=_task, outcome=_outcome)
for _kind in ("missing_on_chain", "unexpected_on_chain", "chain_only"):
    DRIFT.labels(kind=_kind)
for _status in ("mined", "reverted"):
    TX_MINED.labels(status=_status)


def serve(port: int) -> None:
    """Expose the metrics on `port` (aggregating prefork children when configured)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, registry=registry)
    else:
        start_http_server(port)
    log.info("metrics on :%d", port)
