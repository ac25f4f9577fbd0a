"""Stripe webhook events the API stored but could not process inline: the worker's backstop.

The API stores every verified delivery and processes it at once; when that fails (Stripe API
down, a bug) the event stays unprocessed and Stripe redelivers for a while. `sweep` hands such
events to `tuition.process_stripe_event`, which re-fetches the object from Stripe outside any
DB transaction (as the API does) and applies it with the backend's `process_stripe_event`, which
is idempotent per event id.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import process_session_factory, session_scope, utcnow
from backend.core.errors import NotFoundError, PermanentError, RetryableError
from backend.integrations.stripe_gateway import StripeGateway, StripeObjectMissingError
from backend.outbox.service import Topics
from backend.webhooks import service
from backend.webhooks.models import StripeEvent
from backend.worker.celery_app import app
from backend.worker.jobs import mark_enqueued, upsert_job
from backend.worker.outbox import Publisher
from backend.worker.runtime import get_stripe_gateway
from backend.worker.tasks import TuitionTask, publish

log = logging.getLogger(__name__)

TASK = "tuition.process_stripe_event"
# Left to the API's inline processing (and Stripe's own redeliveries) for this long first.
SWEEP_AFTER = timedelta(minutes=2)
MAX_ATTEMPTS = 20


def process_event(factory: sessionmaker[Session], gateway: StripeGateway, event_id: str) -> str:
    """Apply stored event `event_id`; returns the backend's outcome."""
    with session_scope(factory) as s:
        row = s.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
        if row is None:
            raise PermanentError(f"no stored Stripe event {event_id}")
        if row.processed:
            return row.outcome or "processed"
        try:
            target = service.parse_event(row.raw_body).target
        except service.MalformedEventError:
            target = None  # stored before bodies were checked: processing rejects it
    objects: dict[tuple[str, str], dict[str, Any] | None] = {}
    try:
        if target is not None:
            try:
                objects[target] = gateway.fetch_sync(*target)
            except StripeObjectMissingError:
                objects[target] = None
        with session_scope(factory) as s:
            return service.process_stripe_event(
                s,
                event_id,
                source=service.PrefetchedSource(objects),
                checkout_key=gateway.checkout_key(),
            )
    except NotFoundError as exc:
        raise PermanentError(str(exc)) from exc
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        with session_scope(factory) as s:
            service.record_processing_error(s, event_id, message)
        raise RetryableError(f"Stripe event {event_id}: {message}") from exc


def sweep(factory: sessionmaker[Session], publish: Publisher, limit: int = 100) -> int:
    """Enqueue stored, verified, unprocessed events older than `SWEEP_AFTER`."""
    cutoff = utcnow() - SWEEP_AFTER
    messages: list[tuple[str, dict[str, Any]]] = []
    with session_scope(factory) as s:
        rows = s.scalars(
            select(StripeEvent)
            .where(
                StripeEvent.signature_valid.is_(True),
                StripeEvent.processed.is_(False),
                StripeEvent.event_id.is_not(None),
                StripeEvent.attempts < MAX_ATTEMPTS,
                StripeEvent.last_received_at < cutoff,
            )
            .order_by(StripeEvent.id)
            .limit(limit)
        ).all()
        for row in rows:
            assert row.event_id is not None
            kwargs = {"event_id": row.event_id}
            job, needed = upsert_job(
                s, topic=Topics.STRIPE_EVENT, ref=row.event_id, task=TASK, payload=kwargs
            )
            if needed:
                mark_enqueued(s, job)
                s.flush()
                messages.append((TASK, {**kwargs, "job_id": job.id}))
    for task, kwargs in messages:
        publish(task, kwargs)
    if messages:
        log.info("stripe: %d unprocessed event(s) handed to the worker", len(messages))
    return len(messages)


# ---------------------------------------------------------------------- Celery tasks


@app.task(base=TuitionTask, bind=True, name="tuition.process_stripe_event", max_retries=10)
def process_stripe_event(self: Task, event_id: str, job_id: int | None = None) -> dict[str, Any]:
    """Apply a stored Stripe webhook event with the backend's `process_stripe_event`."""
    outcome = process_event(process_session_factory(), get_stripe_gateway(), str(event_id))
    return {"event_id": event_id, "outcome": outcome}


@app.task(name="tuition.sweep_stripe_events", ignore_result=True, acks_late=False)
def sweep_stripe_events() -> int:
    """Hand verified Stripe events the API could not process to `process_stripe_event`."""
    return sweep(process_session_factory(), publish)
