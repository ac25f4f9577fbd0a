"""The card order's lifecycle, in the payment processor's terms but without its objects.

`backend.webhooks` verifies and stores Stripe's deliveries, re-fetches the object an event is
about and translates it into one of these calls; the order moves only along the edges of
`OrderStatus`, so a late or repeated event is a no-op (False): an old "checkout completed" can
never re-activate a refunded order. Access and receipts follow through `mark_paid` /
`mark_ended`, the same pair the crypto rail uses.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.audit.service import record as audit
from backend.certificates.models import RevokeReason
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.service import mark_ended, mark_paid, transition

STRIPE = "stripe"


def lock_card_order(
    session: Session,
    *,
    order_id: str | None = None,
    checkout_session_id: str | None = None,
    payment_intent_id: str | None = None,
    charge_id: str | None = None,
) -> Order | None:
    """The card order any of these identify (the oldest if several), locked; None if none."""
    conditions: list[Any] = []
    if checkout_session_id:
        conditions.append(Order.stripe_checkout_session_id == checkout_session_id)
    if charge_id:
        conditions.append(Order.stripe_charge_id == charge_id)
    if payment_intent_id:
        conditions.append(Order.stripe_payment_intent_id == payment_intent_id)
    if order_id:
        conditions.append(Order.id == order_id)
    if not conditions:
        return None
    return session.scalar(
        select(Order)
        .where(Order.rail == Rail.CARD, or_(*conditions))
        .order_by(Order.created_at)
        .limit(1)
        .with_for_update()
    )


def attach_processor_ids(
    order: Order,
    *,
    checkout_session_id: str | None = None,
    payment_intent_id: str | None = None,
    charge_id: str | None = None,
    dispute_id: str | None = None,
) -> None:
    """Remember the processor's ids of the order's objects (the first seen wins; a dispute's
    id is the latest)."""
    order.stripe_checkout_session_id = order.stripe_checkout_session_id or checkout_session_id
    order.stripe_payment_intent_id = order.stripe_payment_intent_id or payment_intent_id
    order.stripe_charge_id = order.stripe_charge_id or charge_id
    if dispute_id:
        order.stripe_dispute_id = dispute_id


def note_anomaly(order: Order, entry: dict[str, Any]) -> None:
    """Keep a difference between what was asked and what happened on the order (once)."""
    anomalies = list(order.anomalies or [])
    if entry not in anomalies:
        order.anomalies = [*anomalies, entry]


def checkout_paid(
    session: Session, order: Order, *, amount: Any, currency: str, reason: str
) -> bool:
    """The checkout was paid: the order is paid (a different amount is kept as an anomaly)."""
    if amount != order.amount or currency != order.currency:
        note_anomaly(
            order,
            {
                "field": "amount",
                "quoted": f"{order.amount} {order.currency}",
                "paid": f"{amount} {currency}",
            },
        )
    return mark_paid(session, order, actor=STRIPE, reason=reason)


def checkout_closed(session: Session, order: Order, status: str, *, reason: str) -> bool:
    """The checkout ended unpaid: `status` is expired or failed."""
    return transition(
        session, order, status, allowed_from=(OrderStatus.PENDING,), actor=STRIPE, reason=reason
    )


def refunded(session: Session, order: Order, *, reason: str) -> bool:
    """The whole charge was refunded: access and the certificate end, a receipt is queued."""
    return mark_ended(
        session,
        order,
        OrderStatus.REFUNDED,
        allowed_from=(OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.DISPUTED),
        actor=STRIPE,
        reason=reason,
        certificate_reason=RevokeReason.REFUNDED,
    )


def partially_refunded(
    session: Session, order: Order, amount_refunded: int, *, reason: str
) -> None:
    """Part of the charge was refunded: access stays, the order is flagged for review."""
    note_anomaly(
        order,
        {"field": "partial_refund", "quoted": str(order.amount), "paid": str(amount_refunded)},
    )
    session.flush()
    audit(
        session,
        actor=STRIPE,
        action="order.partial_refund",
        subject_type="order",
        subject_id=order.id,
        after={"amountRefunded": str(amount_refunded)},
        reason=reason,
    )


def dispute_opened(session: Session, order: Order, *, reason: str) -> bool:
    """A dispute is open: access is suspended until it is decided."""
    return mark_ended(
        session,
        order,
        OrderStatus.DISPUTED,
        allowed_from=(OrderStatus.PENDING, OrderStatus.PAID),
        actor=STRIPE,
        reason=reason,
    )


def dispute_won(session: Session, order: Order, *, reason: str) -> bool:
    """The dispute was decided for the merchant: the order is paid again."""
    return mark_paid(
        session,
        order,
        allowed_from=(OrderStatus.DISPUTED, OrderStatus.PENDING),
        actor=STRIPE,
        reason=reason,
    )


def dispute_lost(session: Session, order: Order, *, reason: str) -> bool:
    """The dispute was lost: access and the certificate end."""
    return mark_ended(
        session,
        order,
        OrderStatus.LOST,
        allowed_from=(OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.DISPUTED),
        actor=STRIPE,
        reason=reason,
        certificate_reason=RevokeReason.DISPUTED,
    )
