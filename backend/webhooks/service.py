"""Stripe webhook processing: store every delivery, deduplicate by event id, act on the state
re-fetched from Stripe (never on the payload's), and converge whatever the order and number of
deliveries.

Each card order is a small state machine (see `OrderStatus`); every handler reads the current
state of the Stripe object and moves the order only along allowed edges, so a late or repeated
event is a no-op: an old `checkout.session.completed` can never re-activate a refunded order.

`process_stripe_event(session, event_id, source=...)` is the one processing function: the API
calls it inline (with objects it fetched asynchronously beforehand), the worker may call it for
stored events that are not processed yet (with `GatewaySource`, which fetches synchronously).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access.models import AccessSource
from backend.access.service import active_entitlement, grant_access, revoke_access
from backend.audit.service import record as audit
from backend.certificates.models import RevokeReason
from backend.certificates.service import revoke_for_lost_access
from backend.checkout.gateway import StripeGateway
from backend.core.db import utcnow
from backend.core.errors import NotFoundError
from backend.core.metrics import STRIPE_EVENTS
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.service import transition
from backend.outbox.service import Topics, enqueue
from backend.webhooks.models import StripeEvent

logger = logging.getLogger(__name__)

STRIPE = "stripe"
# Event type -> the kind of object to re-fetch.
HANDLED: dict[str, str] = {
    "checkout.session.completed": "checkout.session",
    "checkout.session.async_payment_succeeded": "checkout.session",
    "checkout.session.async_payment_failed": "checkout.session",
    "checkout.session.expired": "checkout.session",
    "charge.refunded": "charge",
    "charge.dispute.created": "dispute",
    "charge.dispute.updated": "dispute",
    "charge.dispute.closed": "dispute",
}
_DISPUTE_OPEN = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)
_DISPUTE_RESOLVED_FOR_MERCHANT = frozenset({"won", "warning_closed"})
KEPT_HEADERS = ("stripe-signature", "content-type", "user-agent", "x-request-id")
INVALID_BODY_KEPT = 64 * 1024


class StripeObjectSource(Protocol):
    """Where `process_stripe_event` gets the current state of a Stripe object."""

    def fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        """The object `object_id` of `kind`."""
        ...


class PrefetchedSource:
    """Objects fetched before the database transaction (the API fetches them asynchronously)."""

    def __init__(self, objects: Mapping[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = dict(objects)

    def fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        return self.objects[(kind, object_id)]


class GatewaySource:
    """Fetch synchronously through the SDK (the worker)."""

    def __init__(self, gateway: StripeGateway) -> None:
        self.gateway = gateway

    def fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        return self.gateway.fetch_sync(kind, object_id)


def object_to_fetch(event_type: str, payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (kind, id) an event is about, if it is an event Tuition handles."""
    kind = HANDLED.get(event_type)
    if kind is None:
        return None
    obj = payload.get("data", {}).get("object", {})
    object_id = obj.get("id") if isinstance(obj, Mapping) else None
    return (kind, str(object_id)) if object_id else None


# ------------------------------------------------------------------------------ storage


def store_invalid_delivery(
    session: Session, *, raw_body: bytes, headers: dict[str, str], error: str
) -> StripeEvent:
    """Keep a delivery whose signature did not verify (without claiming its event id)."""
    claimed = None
    try:
        parsed = json.loads(raw_body)
        if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
            claimed = parsed["id"][:255]
    except ValueError:
        pass
    row = StripeEvent(
        event_id=None,
        claimed_event_id=claimed,
        type=None,
        # Unauthenticated input: keep enough to investigate, not enough to fill the disk.
        raw_body=raw_body[:INVALID_BODY_KEPT],
        headers=headers,
        signature_valid=False,
        processed=False,
        error=error[:2000],
    )
    session.add(row)
    session.flush()
    STRIPE_EVENTS.labels("unknown", "bad_signature").inc()
    return row


def store_event(
    session: Session,
    *,
    event_id: str,
    event_type: str,
    raw_body: bytes,
    headers: dict[str, str],
) -> tuple[StripeEvent, bool]:
    """Store a verified delivery; (row, True) for a new event, (existing row, False) for a
    duplicate (the UNIQUE event id settles concurrent duplicates)."""
    existing = session.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
    if existing is None:
        row = StripeEvent(
            event_id=event_id,
            claimed_event_id=event_id,
            type=event_type,
            raw_body=raw_body,
            headers=headers,
            signature_valid=True,
        )
        try:
            with session.begin_nested():
                session.add(row)
            return row, True
        except IntegrityError:
            existing = session.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
            if existing is None:
                raise
    # An atomic increment: concurrent duplicates must not lose each other's count.
    session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == existing.id)
        .values(deliveries=StripeEvent.deliveries + 1, last_received_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(existing)
    return existing, False


def record_processing_error(session: Session, event_id: str, error: str) -> None:
    """Note a failed processing attempt (the event stays unprocessed for a retry)."""
    row = session.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
    if row is not None:
        row.attempts += 1
        row.error = error[:2000]
        session.flush()


# ------------------------------------------------------------------------------ processing


def process_stripe_event(session: Session, event_id: str, *, source: StripeObjectSource) -> str:
    """Apply a stored, verified event (idempotent); returns its outcome.

    Raises:
        NotFoundError: no verified delivery with this id is stored.
    """
    row = session.scalar(
        select(StripeEvent).where(StripeEvent.event_id == event_id).with_for_update()
    )
    if row is None:
        raise NotFoundError(f"no stored Stripe event {event_id}", code="event_not_found")
    if row.processed:
        return row.outcome or "processed"
    payload = json.loads(row.raw_body)
    event_type = str(payload.get("type"))
    target = object_to_fetch(event_type, payload)
    if target is None:
        outcome = "ignored"
    else:
        current = source.fetch(*target)
        if target[0] == "checkout.session":
            outcome = _on_checkout_session(session, current, event_type, event_id)
        elif target[0] == "charge":
            outcome = _on_charge(session, current, event_id)
        else:
            outcome = _on_dispute(session, current, event_id)
    row.processed = True
    row.processed_at = utcnow()
    row.outcome = outcome[:200]
    row.error = None
    row.attempts += 1
    session.flush()
    STRIPE_EVENTS.labels(event_type, outcome.split(":")[0]).inc()
    return outcome


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _metadata_order_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata") or {}
    value = metadata.get("order_id") if isinstance(metadata, Mapping) else None
    return str(value) if value else None


def _lock_card_order(session: Session, *conditions: Any) -> Order | None:
    return session.scalar(
        select(Order)
        .where(Order.rail == Rail.CARD, or_(*conditions))
        .order_by(Order.created_at)
        .limit(1)
        .with_for_update()
    )


def _order_for_payment(
    session: Session, obj: Mapping[str, Any], charge_id: str | None
) -> Order | None:
    conditions = []
    if charge_id:
        conditions.append(Order.stripe_charge_id == charge_id)
    if payment_intent := _id_of(obj.get("payment_intent")):
        conditions.append(Order.stripe_payment_intent_id == payment_intent)
    if order_id := _metadata_order_id(obj):
        conditions.append(Order.id == order_id)
    return _lock_card_order(session, *conditions) if conditions else None


def _grant_card(session: Session, order: Order, reason: str) -> None:
    # The access service queues the on-chain record (grantAccess) with the entitlement.
    grant_access(
        session,
        address=order.recipient,
        course_id=order.course_id,
        source=AccessSource.CARD,
        order_id=order.id,
        actor=STRIPE,
        reason=reason,
        on_chain=False,
    )


def _revoke_card(
    session: Session, order: Order, reason: str, certificate_reason: int | None = None
) -> None:
    """End the order's access (the access service queues revokeAccess); with
    `certificate_reason` (refunded, dispute lost) the learner's certificate is revoked too."""
    revoked = revoke_access(
        session,
        address=order.recipient,
        course_id=order.course_id,
        order_id=order.id,
        actor=STRIPE,
        reason=reason,
        on_chain=False,
        certificate_reason=certificate_reason,
    )
    # Access already ended (a dispute opened earlier): the certificate still follows.
    if (
        revoked is None
        and certificate_reason is not None
        and active_entitlement(session, order.recipient, order.course_id) is None
    ):
        revoke_for_lost_access(
            session,
            course_id=order.course_id,
            address=order.recipient,
            reason_code=certificate_reason,
            reason=reason,
            actor=STRIPE,
        )


def _note_anomaly(order: Order, entry: dict[str, Any]) -> None:
    anomalies = list(order.anomalies or [])
    if entry not in anomalies:
        order.anomalies = [*anomalies, entry]


def _on_checkout_session(
    session: Session, cs: Mapping[str, Any], event_type: str, event_id: str
) -> str:
    conditions = [Order.stripe_checkout_session_id == str(cs.get("id"))]
    if order_id := _metadata_order_id(cs):
        conditions.append(Order.id == order_id)
    order = _lock_card_order(session, *conditions)
    if order is None:
        logger.warning("Stripe checkout session %s matches no order", cs.get("id"))
        return "unknown_order"
    if order.stripe_checkout_session_id is None:
        order.stripe_checkout_session_id = str(cs.get("id"))
    if (payment_intent := _id_of(cs.get("payment_intent"))) and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = payment_intent
    reason = f"Stripe {event_type} ({event_id})"
    payment_status = cs.get("payment_status")
    if payment_status in ("paid", "no_payment_required"):
        if cs.get("amount_total") != order.amount or (cs.get("currency") or "") != order.currency:
            _note_anomaly(
                order,
                {
                    "field": "amount",
                    "quoted": f"{order.amount} {order.currency}",
                    "paid": f"{cs.get('amount_total')} {cs.get('currency')}",
                },
            )
        if transition(
            session,
            order,
            OrderStatus.PAID,
            allowed_from=(OrderStatus.PENDING,),
            actor=STRIPE,
            reason=reason,
        ):
            _grant_card(session, order, reason)
            enqueue(
                session,
                Topics.RECEIPT_EMAIL,
                {"orderId": order.id, "address": order.buyer},
                dedupe_key=f"{Topics.RECEIPT_EMAIL}:{order.id}",
            )
            return "paid"
        return f"noop:{order.status}"
    if cs.get("status") == "expired":
        moved = transition(
            session,
            order,
            OrderStatus.EXPIRED,
            allowed_from=(OrderStatus.PENDING,),
            actor=STRIPE,
            reason=reason,
        )
        return "expired" if moved else f"noop:{order.status}"
    if event_type == "checkout.session.async_payment_failed":
        moved = transition(
            session,
            order,
            OrderStatus.FAILED,
            allowed_from=(OrderStatus.PENDING,),
            actor=STRIPE,
            reason=reason,
        )
        return "failed" if moved else f"noop:{order.status}"
    session.flush()
    return f"awaiting_payment:{order.status}"


def _on_charge(session: Session, charge: Mapping[str, Any], event_id: str) -> str:
    charge_id = _id_of(charge)
    order = _order_for_payment(session, charge, charge_id)
    if order is None:
        logger.warning("Stripe charge %s matches no order", charge_id)
        return "unknown_order"
    order.stripe_charge_id = order.stripe_charge_id or charge_id
    if not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = _id_of(charge.get("payment_intent"))
    reason = f"Stripe charge {charge_id} refunded ({event_id})"
    if charge.get("refunded"):
        if transition(
            session,
            order,
            OrderStatus.REFUNDED,
            allowed_from=(OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.DISPUTED),
            actor=STRIPE,
            reason=reason,
        ):
            _revoke_card(session, order, reason, RevokeReason.REFUNDED)
            enqueue(
                session,
                Topics.RECEIPT_EMAIL,
                {"orderId": order.id, "address": order.buyer, "kind": "refunded"},
                dedupe_key=f"{Topics.RECEIPT_EMAIL}:refunded:{order.id}",
            )
            return "refunded"
        return f"noop:{order.status}"
    refunded = int(charge.get("amount_refunded") or 0)
    if refunded:
        # A partial refund keeps access; it is flagged for review.
        _note_anomaly(
            order, {"field": "partial_refund", "quoted": str(order.amount), "paid": str(refunded)}
        )
        session.flush()
        audit(
            session,
            actor=STRIPE,
            action="order.partial_refund",
            subject_type="order",
            subject_id=order.id,
            after={"amountRefunded": str(refunded)},
            reason=reason,
        )
        return "partial_refund"
    session.flush()
    return f"noop:{order.status}"


def _on_dispute(session: Session, dispute: Mapping[str, Any], event_id: str) -> str:
    dispute_id = _id_of(dispute)
    order = _order_for_payment(session, dispute, _id_of(dispute.get("charge")))
    charge = dispute.get("charge")
    if order is None and isinstance(charge, Mapping):
        order = _order_for_payment(session, charge, _id_of(charge))
    if order is None:
        logger.warning("Stripe dispute %s matches no order", dispute_id)
        return "unknown_order"
    order.stripe_dispute_id = dispute_id
    order.stripe_charge_id = order.stripe_charge_id or _id_of(dispute.get("charge"))
    status = str(dispute.get("status"))
    reason = f"Stripe dispute {dispute_id} {status} ({event_id})"
    if status in _DISPUTE_RESOLVED_FOR_MERCHANT:
        if transition(
            session,
            order,
            OrderStatus.PAID,
            allowed_from=(OrderStatus.DISPUTED, OrderStatus.PENDING),
            actor=STRIPE,
            reason=reason,
        ):
            _grant_card(session, order, reason)
            return "dispute_won"
        return f"noop:{order.status}"
    if status == "lost":
        if transition(
            session,
            order,
            OrderStatus.LOST,
            allowed_from=(OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.DISPUTED),
            actor=STRIPE,
            reason=reason,
        ):
            _revoke_card(session, order, reason, RevokeReason.DISPUTED)
            return "dispute_lost"
        return f"noop:{order.status}"
    if status in _DISPUTE_OPEN:
        if transition(
            session,
            order,
            OrderStatus.DISPUTED,
            allowed_from=(OrderStatus.PENDING, OrderStatus.PAID),
            actor=STRIPE,
            reason=reason,
        ):
            _revoke_card(session, order, reason)
            return "disputed"
        return f"noop:{order.status}"
    session.flush()
    return f"noop:{order.status}"
