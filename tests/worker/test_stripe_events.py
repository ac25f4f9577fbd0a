"""Stripe events the API stored but did not process: the worker applies them (with retries)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import stripe
from sqlalchemy import select, update
from support.anvil import Anvil
from support.market import new_learner
from support.worker import WorkerEnv, reset_settings

from backend.catalog.models import Course
from backend.core.db import session_scope, utcnow
from backend.core.errors import RetryableError
from backend.devtools.stripe_fake import StripeFake
from backend.orders.models import Order, OrderStatus
from backend.orders.service import create_card_order
from backend.webhooks import tasks as webhook_tasks
from backend.webhooks.models import StripeEvent
from backend.webhooks.service import store_event
from backend.worker import tasks
from backend.worker.models import JobStatus

pytestmark = pytest.mark.chain

API_KEY = "sk_test_worker"


@pytest.fixture
def fake(wenv: WorkerEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    """The Stripe stand-in, with the worker's settings pointed at it."""
    with StripeFake(API_KEY) as server:
        monkeypatch.setenv("TUITION_STRIPE_API_BASE", server.api_base)
        monkeypatch.setenv("TUITION_STRIPE_SECRET_KEY", API_KEY)
        reset_settings()
        yield server


def paid_event(wenv: WorkerEnv, fake: StripeFake, learner: str) -> tuple[str, str]:
    """A card order paid on the fake, its checkout.session.completed event stored unprocessed."""
    course_id = wenv.course(wenv.deployed.courses[2])
    with session_scope(wenv.factory) as s:
        course = s.get(Course, course_id)
        assert course is not None
        order = create_card_order(s, course=course, buyer=learner, amount=4900, currency="eur")
        order_id = order.id
    client = stripe.StripeClient(API_KEY, base_addresses={"api": fake.api_base})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 4900,
                        "product_data": {"name": "Course"},
                    },
                }
            ],
            "metadata": {"order_id": order_id},
            "success_url": "http://localhost/ok",
        }
    )
    with session_scope(wenv.factory) as s:
        s.execute(
            update(Order).where(Order.id == order_id).values(stripe_checkout_session_id=session.id)
        )
    event: dict[str, Any] = fake.complete_session(session.id)
    with session_scope(wenv.factory) as s:
        store_event(
            s,
            event_id=event["id"],
            event_type=event["type"],
            raw_body=json.dumps(event).encode(),
            headers={},
        )
    return order_id, event["id"]


def test_stored_event_is_processed_once_and_its_effects_follow(
    wenv: WorkerEnv, anvil: Anvil, fake: StripeFake
) -> None:
    learner = new_learner(anvil)
    wenv.user(learner.address, "stripe@example.com")
    order_id, event_id = paid_event(wenv, fake, learner.address)

    assert webhook_tasks.process_stripe_event.apply(kwargs={"event_id": event_id}).get()[
        "outcome"
    ] == ("paid")
    again = webhook_tasks.process_stripe_event.apply(kwargs={"event_id": event_id}).get()
    assert again["outcome"] == "paid"  # the stored outcome: processed once
    with session_scope(wenv.factory) as s:
        order = s.get(Order, order_id)
        assert order is not None and order.status == OrderStatus.PAID

    # The backend's outbox messages (card grant, receipt) take it from there.
    assert tasks.relay_outbox.apply().get() == 2
    course = wenv.deployed.courses[2]
    assert wenv.deployed.market.functions.hasAccess(course, learner.address).call()
    assert len(wenv.mail_files()) == 1


def test_sweep_hands_over_unprocessed_events(
    wenv: WorkerEnv, anvil: Anvil, fake: StripeFake
) -> None:
    learner = new_learner(anvil)
    _, event_id = paid_event(wenv, fake, learner.address)
    assert webhook_tasks.sweep_stripe_events.apply().get() == 0  # the API's own turn first
    with session_scope(wenv.factory) as s:
        s.execute(update(StripeEvent).values(last_received_at=utcnow() - timedelta(minutes=10)))
    assert webhook_tasks.sweep_stripe_events.apply().get() == 1
    with session_scope(wenv.factory) as s:
        row = s.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
        assert row is not None and row.processed and row.outcome == "paid"
    (job,) = wenv.jobs()
    assert job.status == JobStatus.DONE
    assert webhook_tasks.sweep_stripe_events.apply().get() == 0


def test_stripe_outage_is_recorded_and_retried(
    wenv: WorkerEnv, anvil: Anvil, fake: StripeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.webhooks.tasks import process_event

    learner = new_learner(anvil)
    _, event_id = paid_event(wenv, fake, learner.address)

    class Down:
        def fetch_sync(self, kind: str, object_id: str) -> dict[str, Any]:
            raise ConnectionError("Stripe is down")

    with pytest.raises(RetryableError):
        process_event(wenv.factory, Down(), event_id)  # type: ignore[arg-type]
    with session_scope(wenv.factory) as s:
        row = s.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
        assert row is not None and not row.processed and row.attempts == 1
        assert row.error and "Stripe is down" in row.error
