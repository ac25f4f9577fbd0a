"""Prometheus metrics of the API: request latency by route template, and domain counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# One registry for the process (not prometheus_client's global one, so importing libraries that
# register their own collectors does not leak into /metrics).
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

REQUEST_LATENCY = Histogram(
    "tuition_http_request_duration_seconds",
    "HTTP request latency by route template, method and status.",
    ("route", "method", "status"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
ACCESS_CHANGES = Counter(
    "tuition_access_changes_total",
    "Entitlements granted or revoked, by action and source.",
    ("action", "source"),
    registry=REGISTRY,
)
STRIPE_EVENTS = Counter(
    "tuition_stripe_events_total",
    "Stripe webhook deliveries by event type and outcome.",
    ("type", "outcome"),
    registry=REGISTRY,
)
ACCESS_CACHE_LOOKUPS = Counter(
    "tuition_access_cache_lookups",
    "Access checks by how the API process's cache answered: hit, miss (read from the "
    "database), or bypass (its listener has not proved it hears every change: database)",
    ["result"],
    registry=REGISTRY,
)
ACCESS_CACHE_RECONNECTS = Counter(
    "tuition_access_cache_reconnects",
    "Times the access cache's listener connection was lost or went silent and was replaced",
    registry=REGISTRY,
)
ACCESS_CACHE_PROVEN = Gauge(
    "tuition_access_cache_proven",
    "1 while the access cache serves answers (its listener proved it hears every change "
    "within the staleness bound), 0 while access checks go to the database",
    registry=REGISTRY,
)
SIGN_INS = Counter(
    "tuition_sign_ins_total",
    "Sign-in attempts by outcome.",
    ("outcome",),
    registry=REGISTRY,
)


class PoolCollector(Collector):
    """The database pools' connections in use against their capacity, read at scrape time
    (what the "pool near its limit" alert divides)."""

    def __init__(self) -> None:
        self.source: Callable[[], dict[str, tuple[int, int]]] | None = None

    def collect(self) -> Iterator[Metric]:
        """One sample per pool of the watched database."""
        in_use = GaugeMetricFamily(
            "tuition_db_pool_in_use", "Database connections checked out, by pool.", labels=["pool"]
        )
        capacity = GaugeMetricFamily(
            "tuition_db_pool_capacity", "Most connections the pool opens.", labels=["pool"]
        )
        for pool, (used, most) in (self.source() if self.source else {}).items():
            in_use.add_metric([pool], used)
            capacity.add_metric([pool], most)
        yield in_use
        yield capacity


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def render_metrics() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
