"""The checkout's Celery task: expiring stale card orders after asking Stripe."""

from __future__ import annotations

from backend.checkout.expiry import expire_stale_card_orders
from backend.core.db import process_session_factory
from backend.worker.celery_app import app
from backend.worker.runtime import get_stripe_gateway


@app.task(name="tuition.expire_card_orders", ignore_result=True, acks_late=False)
def expire_card_orders() -> int:
    """Expire stale pending card orders with Stripe's word (every minute, from beat)."""
    return len(expire_stale_card_orders(process_session_factory(), get_stripe_gateway()))
