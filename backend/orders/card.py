"""The card order's lifecycle, in the payment processor's terms but without its objects.

`backend.webhooks` verifies and stores Stripe's deliveries, re-fetches the object an event is
about and translates it into one of these calls; the order moves only along the edges of
`OrderStatus`, so a late or repeated event is a no-op (False): an old "checkout completed" can
never re-activate a refunded order. Access and receipts follow through `mark_paid` /
`mark_ended`, the same pair the crypto rail uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.access.service import active_entitlement
from backend.audit.service import record as audit
from backend.catalog.models import Course
from backend.certificates.models import RevokeReason
from backend.core.errors import ConflictError
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.service import get_order, mark_ended, mark_paid, transition
from backend.outbox.service import Topics, enqueue

STRIPE = "stripe"
# Where a payment Stripe completed can still land: the order was waiting (pending, processing)
# or expired here while Stripe went on (a delayed webhook, a late asynchronous settlement).
PAYABLE = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.EXPIRED)


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


def rebuild_order(
    session: Session, cs: Mapping[str, Any], fields: Mapping[str, str], *, reason: str
) -> Order | None:
    """The card order a Checkout Session was created for, made again from the session's signed
    metadata (`fields`) when the database no longer has it (restored from a backup taken before
    the checkout); the order as it was created (id, reference, amount, fee, destination),
    pending, flagged and audited. None when the course is gone, or when the order exists with
    another Checkout Session.

    The caller checked the signature: only sessions this application created get here.
    """
    existing = lock_card_order(session, order_id=fields["order_id"])
    if existing is not None:
        # Ours, with its own session: this one (the same signed fields on another session)
        # does not get to settle it.
        return existing if existing.stripe_checkout_session_id == cs.get("id") else None
    course = session.get(Course, int(fields["course_id"]))
    if course is None:
        return None
    expires = cs.get("expires_at")
    order = Order(
        id=fields["order_id"],
        rail=Rail.CARD,
        course_id=course.id,
        buyer=fields["address"],
        recipient=fields["address"],
        amount=int(fields["amount"]),
        currency=fields["currency"],
        fee=int(fields["fee"]),
        status=OrderStatus.PENDING,
        order_ref=fields["order_ref"],
        expires_at=datetime.fromtimestamp(int(expires), UTC) if expires else None,
        stripe_checkout_session_id=str(cs.get("id")),
        stripe_destination=fields["destination"] or None,
        anomalies=[
            {
                "field": "rebuilt",
                "quoted": f"{fields['amount']} {fields['currency']}",
                "paid": "order missing here: rebuilt from its signed Checkout Session",
            }
        ],
    )
    session.add(order)
    session.flush()
    audit(
        session,
        actor=STRIPE,
        action="order.rebuilt",
        subject_type="order",
        subject_id=order.id,
        after={"checkout_session": order.stripe_checkout_session_id, **fields},
        reason=reason,
    )
    return order


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
) -> str:
    """Stripe says the checkout is paid; returns the outcome (`paid`, `needs_review`, `noop:…`).

    The rule: money Stripe took is never left without access or a decision.
    - Paid as quoted (amount and currency): the order is paid and access granted, even if the
      order had expired here meanwhile (honoured, flagged `late_payment`).
    - Paid otherwise, or paid late for a learner who has access by then (a second payment):
      nothing is granted; the order needs review, and an admin refunds it or accepts it.
    """
    if order.status not in PAYABLE:
        return f"noop:{order.status}"
    paid = f"{amount} {currency}"
    quoted = f"{order.amount} {order.currency}"
    late = order.status == OrderStatus.EXPIRED
    problem = None
    if amount != order.amount or currency != order.currency:
        problem = {"field": "amount", "quoted": quoted, "paid": paid}
    elif late and active_entitlement(session, order.recipient, order.course_id) is not None:
        problem = {"field": "late_payment", "quoted": quoted, "paid": "already has access"}
    if problem is not None:
        note_anomaly(order, problem)
        transition(
            session,
            order,
            OrderStatus.NEEDS_REVIEW,
            allowed_from=PAYABLE,
            actor=STRIPE,
            reason=f"{reason}: {problem['field']} (quoted {quoted}, paid {problem['paid']})",
        )
        return "needs_review"
    if late:
        note_anomaly(order, {"field": "late_payment", "quoted": quoted, "paid": paid})
        reason = f"{reason}, after the order expired here: honoured"
    moved = mark_paid(session, order, allowed_from=PAYABLE, actor=STRIPE, reason=reason)
    return "paid" if moved else f"noop:{order.status}"


def checkout_processing(session: Session, order: Order, *, reason: str) -> bool:
    """The checkout completed with a payment that has not settled (an asynchronous method):
    the order waits for Stripe's verdict, out of local expiry's reach."""
    return transition(
        session,
        order,
        OrderStatus.PROCESSING,
        allowed_from=(OrderStatus.PENDING, OrderStatus.EXPIRED),
        actor=STRIPE,
        reason=reason,
    )


def checkout_closed(session: Session, order: Order, status: str, *, reason: str) -> bool:
    """The checkout ended unpaid: `status` is expired or failed (a processing payment can only
    fail)."""
    allowed: tuple[str, ...] = (OrderStatus.PENDING,)
    if status == OrderStatus.FAILED:
        allowed = (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.EXPIRED)
    return transition(session, order, status, allowed_from=allowed, actor=STRIPE, reason=reason)


def orders_to_review(session: Session, *, limit: int = 200) -> Sequence[Order]:
    """Card orders Stripe took money for that grant nothing until an admin decides, oldest
    first."""
    return session.scalars(
        select(Order)
        .where(Order.rail == Rail.CARD, Order.status == OrderStatus.NEEDS_REVIEW)
        .order_by(Order.updated_at, Order.id)
        .limit(limit)
    ).all()


def accept_reviewed(session: Session, order_id: str, *, admin: str, reason: str) -> Order:
    """An admin accepts a payment that needed review: the order is paid and access granted
    (audited with the admin's reason). Accepting a paid card order changes nothing.

    Raises:
        NotFoundError: no such order.
        ConflictError: the order is not a card order waiting for review (`not_in_review`).
    """
    order = get_order(session, order_id, lock=True)
    if order.rail == Rail.CARD and order.status == OrderStatus.PAID:
        return order  # paid already (accepted before: a repeated click)
    if order.rail != Rail.CARD or order.status != OrderStatus.NEEDS_REVIEW:
        raise ConflictError(
            f"only card orders that need review can be accepted (this one is {order.status})",
            code="not_in_review",
        )
    mark_paid(
        session,
        order,
        allowed_from=(OrderStatus.NEEDS_REVIEW,),
        actor=f"admin:{admin}",
        reason=f"payment accepted after review: {reason}",
    )
    return order


def refunded(session: Session, order: Order, *, reason: str) -> bool:
    """The whole charge was refunded: access and the certificate end, a receipt is queued."""
    return mark_ended(
        session,
        order,
        OrderStatus.REFUNDED,
        allowed_from=(*PAYABLE, OrderStatus.PAID, OrderStatus.DISPUTED, OrderStatus.NEEDS_REVIEW),
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
    """The dispute was lost: access and the certificate end. Of a destination charge, the
    provider's share is taken back (the worker reverses its transfer)."""
    moved = mark_ended(
        session,
        order,
        OrderStatus.LOST,
        allowed_from=(*PAYABLE, OrderStatus.PAID, OrderStatus.DISPUTED, OrderStatus.NEEDS_REVIEW),
        actor=STRIPE,
        reason=reason,
        certificate_reason=RevokeReason.DISPUTED,
    )
    if moved and order.stripe_destination is not None:
        enqueue(
            session,
            Topics.CARD_TRANSFER_REVERSAL,
            {"orderId": order.id},
            dedupe_key=f"{Topics.CARD_TRANSFER_REVERSAL}:{order.id}",
        )
    return moved
