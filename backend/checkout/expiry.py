"""Expiring card orders: Stripe is asked before an order is called expired.

A card order's lifetime is its Checkout Session's, but Stripe may still complete the session
(a payment submitted at the last second) or already have completed it (a webhook delayed by an
outage). So a stale pending card order is never expired on the local clock alone:

1. its session is fetched; an open one is expired at Stripe (`expire`), so nobody can pay it
   any more; if Stripe refuses because it completed meanwhile, it is fetched again;
2. the session's state is applied exactly as its webhook would be
   (`backend.webhooks.service.apply_checkout_session`): expired, paid (access), processing (an
   asynchronous payment), or needs review;
3. a session Stripe does not have expires the order locally.

Each order is handled on its own (Stripe calls outside any transaction, the order locked while
applying): running twice, or concurrently with the webhook, ends the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import session_scope, utcnow
from backend.integrations.stripe_gateway import StripeGateway, StripeObjectMissingError
from backend.orders.card import lock_card_order
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.service import transition
from backend.webhooks.service import apply_checkout_session

log = logging.getLogger(__name__)

EXPIRY_CHECK = "expiry_check"


def stale_card_orders(session: Session, *, now: datetime, limit: int = 100) -> list[str]:
    """Ids of pending card orders past their expiry, oldest first."""
    return list(
        session.scalars(
            select(Order.id)
            .where(
                Order.rail == Rail.CARD,
                Order.status == OrderStatus.PENDING,
                Order.expires_at < now,
            )
            .order_by(Order.expires_at)
            .limit(limit)
        ).all()
    )


def _session_state(gateway: StripeGateway, session_id: str) -> dict[str, Any] | None:
    """The session after making sure it cannot be paid any more; None if Stripe has none."""
    try:
        cs = gateway.fetch_sync("checkout.session", session_id)
        if cs.get("status") == "open":
            cs = gateway.expire_checkout_session_sync(session_id) or gateway.fetch_sync(
                "checkout.session", session_id
            )
    except StripeObjectMissingError:
        return None
    return cs


def expire_card_order(factory: sessionmaker[Session], gateway: StripeGateway, order_id: str) -> str:
    """Settle one stale pending card order with Stripe's word; returns the outcome."""
    with session_scope(factory) as s:
        order = s.get(Order, order_id)
        if order is None or order.status != OrderStatus.PENDING:
            return "noop"
        session_id = order.stripe_checkout_session_id
    cs = _session_state(gateway, session_id) if session_id else None
    with session_scope(factory) as s:
        if cs is not None:
            return apply_checkout_session(s, cs, EXPIRY_CHECK, f"expiry of order {order_id}")
        locked = lock_card_order(s, order_id=order_id)
        if locked is None:
            return "noop"
        moved = transition(
            s,
            locked,
            OrderStatus.EXPIRED,
            allowed_from=(OrderStatus.PENDING,),
            actor="system",
            reason="not paid in time (Stripe has no checkout session for it)",
        )
        return "expired" if moved else f"noop:{locked.status}"


def expire_stale_card_orders(
    factory: sessionmaker[Session], gateway: StripeGateway, *, now: datetime | None = None
) -> dict[str, str]:
    """Handle every stale pending card order (a periodic job); returns outcome per order. An
    order Stripe cannot be asked about now stays pending for the next run."""
    with session_scope(factory) as s:
        ids = stale_card_orders(s, now=now or utcnow())
    outcomes: dict[str, str] = {}
    for order_id in ids:
        try:
            outcomes[order_id] = expire_card_order(factory, gateway, order_id)
        except Exception:
            log.exception("expiry check of card order %s failed; retried next run", order_id)
            outcomes[order_id] = "error"
    return outcomes
