"""Prometheus metrics of the API: request latency by route template, and domain counters."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)

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
SIGN_INS = Counter(
    "tuition_sign_ins_total",
    "Sign-in attempts by outcome.",
    ("outcome",),
    registry=REGISTRY,
)


def render_metrics() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
