"""The outbox relay: from the backend's `outbox` table to Celery.

The backend writes a change and its outbox message in one commit. The relay, in one DB
transaction per batch: locks unpublished messages (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
several relays share the work; on SQLite the transaction's BEGIN IMMEDIATE serializes relays),
records a `worker_jobs` row per message, publishes the Celery messages, marks the outbox rows
published, and commits. A crash before the commit leaves the rows unpublished and the next run
publishes them again: at most two publications, absorbed by idempotent tasks. A message lost by
the broker afterwards is re-sent from its job by `resume_stalled`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import session_scope, utcnow
from backend.outbox.models import OutboxMessage
from backend.outbox.service import Topics
from backend.worker import metrics
from backend.worker.jobs import mark_enqueued, upsert_job

log = logging.getLogger(__name__)

Publisher = Callable[[str, dict[str, Any]], None]


class BadMessageError(ValueError):
    """An outbox payload the relay cannot turn into a task call."""


def _pick(payload: dict[str, Any], *names: str) -> Any:
    for name in names:
        if payload.get(name) is not None:
            return payload[name]
    raise BadMessageError(f"payload lacks {' / '.join(names)}: {payload!r}")


def _certificate(payload: dict[str, Any]) -> dict[str, Any]:
    return {"certificate_id": int(_pick(payload, "certificateId", "certificate_id"))}


def _entitlement(payload: dict[str, Any]) -> dict[str, Any]:
    return {"entitlement_id": int(_pick(payload, "entitlementId", "entitlement_id"))}


def _receipt(payload: dict[str, Any]) -> dict[str, Any]:
    kind = str(payload.get("kind") or "paid")
    if kind not in ("paid", "refunded"):
        raise BadMessageError(f"unknown receipt kind {kind!r}")
    return {"order_id": str(_pick(payload, "orderId", "order_id")), "kind": kind}


def _order(payload: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": str(_pick(payload, "orderId", "order_id"))}


def _verification(payload: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": int(_pick(payload, "requestId", "request_id"))}


def _stripe(payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": str(_pick(payload, "eventId", "event_id"))}


@dataclass(frozen=True)
class Route:
    """Which task handles a topic and how its kwargs come from the payload."""

    task: str
    kwargs: Callable[[dict[str, Any]], dict[str, Any]]


ROUTES: dict[str, Route] = {
    Topics.CERTIFICATE_REQUESTED: Route("tuition.mint_certificate", _certificate),
    Topics.CERTIFICATE_REVOKE: Route("tuition.revoke_certificate", _certificate),
    Topics.ACCESS_GRANT: Route("tuition.record_access_grant", _entitlement),
    Topics.ACCESS_REVOKE: Route("tuition.record_access_revoke", _entitlement),
    Topics.PROVIDER_VERIFICATION: Route("tuition.set_provider_verification", _verification),
    Topics.RECEIPT_EMAIL: Route("tuition.send_receipt", _receipt),
    Topics.CARD_TRANSFER_REVERSAL: Route("tuition.reverse_card_transfer", _order),
    Topics.STRIPE_EVENT: Route("tuition.process_stripe_event", _stripe),
}

# A message the relay cannot route is retried with this back-off (seconds, capped), so one bad
# row never blocks the ones behind it and a deploy that adds the route picks it up.
BAD_MESSAGE_BACKOFF = (10, 60, 300, 3600)


def _observe_lag(s: Session) -> None:
    oldest, pending = s.execute(
        select(func.min(OutboxMessage.created_at), func.count()).where(
            OutboxMessage.published_at.is_(None)
        )
    ).one()
    metrics.OUTBOX_PENDING.set(pending or 0)
    if oldest is None:
        metrics.OUTBOX_LAG.set(0)
        return
    if isinstance(oldest, str):  # an aggregate SQLite returns untyped
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    metrics.OUTBOX_LAG.set(max(0.0, (utcnow() - oldest).total_seconds()))


def relay_once(
    factory: sessionmaker[Session],
    publish: Publisher,
    *,
    batch: int = 100,
    defer_publish: bool = False,
) -> int:
    """Relay up to `batch` available messages; returns how many were published.

    `defer_publish` publishes after the commit instead of before it: for eager mode, where
    "publishing" runs the task inline and must not wait on the relay's own write lock.
    """
    now = utcnow()
    deferred: list[tuple[str, dict[str, Any]]] = []
    published = 0
    with session_scope(factory) as s:
        _observe_lag(s)
        rows = s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None), OutboxMessage.available_at <= now)
            .order_by(OutboxMessage.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            route = ROUTES.get(row.topic)
            try:
                if route is None:
                    raise BadMessageError(f"no route for topic {row.topic!r}")
                kwargs = route.kwargs(dict(row.payload or {}))
            except (BadMessageError, TypeError, ValueError) as exc:
                delay = BAD_MESSAGE_BACKOFF[min(row.attempts, len(BAD_MESSAGE_BACKOFF) - 1)]
                row.attempts += 1
                row.last_error = str(exc)[:2000]
                row.available_at = now + timedelta(seconds=delay)
                log.error("outbox message %d not relayed: %s", row.id, exc)
                continue
            job, needed = upsert_job(
                s, topic=row.topic, ref=str(row.id), task=route.task, payload=kwargs
            )
            row.published_at = now
            row.attempts += 1
            row.last_error = None
            if not needed:
                continue
            mark_enqueued(s, job)
            s.flush()
            message = (route.task, {**kwargs, "job_id": job.id})
            if defer_publish:
                deferred.append(message)
            else:
                # Inside the transaction: if publishing fails, nothing is marked published.
                publish(*message)
            published += 1
            metrics.OUTBOX_PUBLISHED.labels(topic=row.topic).inc()
    for message in deferred:
        publish(*message)
    if published:
        log.info("outbox: relayed %d message(s)", published)
    return published
