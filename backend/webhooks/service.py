"""Stripe webhook processing: store every delivery, deduplicate by event id, act on the state
re-fetched from Stripe (never on the payload's), and converge whatever the order and number of
deliveries.

Every handler reads the current state of the Stripe object and translates it into a call of
`backend.orders.card` (which owns the card order's state machine, its access and its receipts),
so a late or repeated event is a no-op: an old `checkout.session.completed` can never
re-activate a refunded order.

`process_stripe_event(session, event_id, source=...)` is the one processing function: the API
calls it inline (with objects it fetched asynchronously beforehand), the worker may call it for
stored events that are not processed yet (with `GatewaySource`, which fetches synchronously).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.db import utcnow
from backend.core.errors import DomainError, NotFoundError
from backend.core.metrics import STRIPE_EVENTS
from backend.integrations.stripe_gateway import (
    StripeGateway,
    StripeObjectMissingError,
    signed_checkout_fields,
)
from backend.orders import card
from backend.orders.models import Order, OrderStatus
from backend.payouts import connect
from backend.webhooks.models import StripeEvent

logger = logging.getLogger(__name__)

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
    # Connect: a provider's Express account (onboarding progress, capabilities).
    "account.updated": "account",
}
_DISPUTE_OPEN = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)
_DISPUTE_RESOLVED_FOR_MERCHANT = frozenset({"won", "warning_closed"})
KEPT_HEADERS = ("stripe-signature", "content-type", "user-agent", "x-request-id")
INVALID_BODY_KEPT = 64 * 1024
# Stripe's ids are ASCII letters, digits and underscores; anything else never reaches its API
# (an id is part of the URL the SDK requests).
_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,251}")
_OBJECT_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
_EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,100}")
OUTCOME_MALFORMED = "rejected:malformed"
OUTCOME_OBJECT_MISSING = "rejected:object_not_found"


class MalformedEventError(DomainError):
    """A correctly signed body that is not a well-formed Stripe event."""

    code = "malformed_event"
    status_code = 400
    message = "The body is not a well-formed Stripe event."


@dataclass(frozen=True)
class EventEnvelope:
    """What Tuition reads of a verified event: its id, its type, and the object to re-fetch
    (None for a type Tuition does not handle)."""

    event_id: str
    type: str
    target: tuple[str, str] | None


def parse_event(raw: bytes) -> EventEnvelope:
    """Validate the shape of a verified event body (the state is always re-fetched).

    Raises:
        MalformedEventError: not a JSON object with an `evt_` id, a type and `data.object`, or,
            for a handled type, `data.object.id` is not a Stripe id.
    """
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MalformedEventError("the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise MalformedEventError("the event is not a JSON object")
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise MalformedEventError("the event has no valid id")
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise MalformedEventError("the event has no valid type")
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEventError("the event's data.object is not an object")
    kind = HANDLED.get(event_type)
    if kind is None:
        return EventEnvelope(event_id, event_type, None)
    object_id = data["object"].get("id")
    if not isinstance(object_id, str) or not _OBJECT_ID.fullmatch(object_id):
        raise MalformedEventError("the event's data.object has no valid id")
    return EventEnvelope(event_id, event_type, (kind, object_id))


class StripeObjectSource(Protocol):
    """Where `process_stripe_event` gets the current state of a Stripe object."""

    def fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        """The object `object_id` of `kind`."""
        ...


class PrefetchedSource:
    """Objects fetched before the database transaction (the API fetches them asynchronously);
    None stands for an object Stripe answered 404 for."""

    def __init__(self, objects: Mapping[tuple[str, str], dict[str, Any] | None]) -> None:
        self.objects = dict(objects)

    def fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        found = self.objects[(kind, object_id)]
        if found is None:
            raise StripeObjectMissingError(kind, object_id)
        return found


class GatewaySource:
    """Fetch synchronously through the SDK (the worker)."""

    def __init__(self, gateway: StripeGateway) -> None:
        self.gateway = gateway

    def fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        return self.gateway.fetch_sync(kind, object_id)


# ------------------------------------------------------------------------------ storage


def store_invalid_delivery(
    session: Session,
    *,
    raw_body: bytes,
    headers: dict[str, str],
    error: str,
    signature_valid: bool = False,
) -> StripeEvent:
    """Keep a delivery that is not acted on, without claiming its event id: its signature did
    not verify, or (`signature_valid`) its body is not a well-formed event, which is stored as
    processed with the outcome `rejected:malformed` so nothing retries it."""
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
        signature_valid=signature_valid,
        processed=signature_valid,
        processed_at=utcnow() if signature_valid else None,
        outcome=OUTCOME_MALFORMED if signature_valid else None,
        error=error[:2000],
    )
    session.add(row)
    session.flush()
    STRIPE_EVENTS.labels("unknown", "malformed" if signature_valid else "bad_signature").inc()
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
    STRIPE_EVENTS.labels(row.type if row and row.type else "unknown", "processing_error").inc()


# ------------------------------------------------------------------------------ processing


def process_stripe_event(
    session: Session,
    event_id: str,
    *,
    source: StripeObjectSource,
    checkout_key: bytes | None = None,
) -> str:
    """Apply a stored, verified event (idempotent); returns its outcome. With `checkout_key`, a
    paid Checkout Session whose order the database lost (restored from an older backup) but
    whose metadata this application signed gets its order rebuilt.

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
    try:
        envelope = parse_event(row.raw_body)
    except MalformedEventError as exc:  # stored before bodies were checked
        return _finish(session, row, "unknown", OUTCOME_MALFORMED, error=exc.message)
    event_type, target = envelope.type, envelope.target
    current: dict[str, Any] | None = None
    if target is not None:
        try:
            current = source.fetch(*target)
        except StripeObjectMissingError:
            # Stripe has no such object (a forged or foreign event signed with our secret, a
            # test-mode object): acknowledged and kept, never retried.
            logger.warning("Stripe event %s is about a missing %s %s", event_id, *target)
    if target is None:
        outcome = "ignored"
    elif current is None:
        outcome = OUTCOME_OBJECT_MISSING
    else:
        if target[0] == "checkout.session":
            outcome = apply_checkout_session(
                session, current, event_type, event_id, checkout_key=checkout_key
            )
        elif target[0] == "charge":
            outcome = _on_charge(session, current, event_id)
        elif target[0] == "account":
            outcome = connect.apply_account(
                session, current, reason=f"Stripe {event_type} ({event_id})"
            )
        else:
            outcome = _on_dispute(session, current, event_id)
    return _finish(session, row, event_type, outcome)


def _finish(
    session: Session, row: StripeEvent, event_type: str, outcome: str, *, error: str | None = None
) -> str:
    """Mark the stored event processed with its outcome."""
    row.processed = True
    row.processed_at = utcnow()
    row.outcome = outcome[:200]
    row.error = error
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


def _outcome(moved: bool, done: str, order: Order) -> str:
    return done if moved else f"noop:{order.status}"


def apply_checkout_session(
    session: Session,
    cs: Mapping[str, Any],
    event_type: str,
    event_id: str,
    *,
    checkout_key: bytes | None = None,
) -> str:
    """Apply the current state of Checkout Session `cs` to the order it was created for (an
    event's, or the expiry check's with `event_type` "expiry_check"); returns the outcome."""
    # Only a session this application created settles an order: its id was stored with the
    # order, or (the order lost with a database restored from before the checkout) its metadata
    # carries our signature. A session made elsewhere in the account cannot pay by naming one.
    order = card.lock_card_order(session, checkout_session_id=str(cs.get("id")))
    if order is None and checkout_key is not None:
        fields = signed_checkout_fields(cs.get("metadata") or {}, checkout_key)
        if fields is not None:
            order = card.rebuild_order(
                session, cs, fields, reason=f"Stripe {event_type} ({event_id})"
            )
    if order is None:
        logger.warning("Stripe checkout session %s matches no order", cs.get("id"))
        return "unknown_order"
    card.attach_processor_ids(
        order,
        checkout_session_id=str(cs.get("id")),
        payment_intent_id=_id_of(cs.get("payment_intent")),
    )
    reason = f"Stripe {event_type} ({event_id})"
    if cs.get("payment_status") in ("paid", "no_payment_required"):
        return card.checkout_paid(
            session,
            order,
            amount=cs.get("amount_total"),
            currency=cs.get("currency") or "",
            reason=reason,
        )
    if event_type == "checkout.session.async_payment_failed":
        moved = card.checkout_closed(session, order, OrderStatus.FAILED, reason=reason)
        return _outcome(moved, "failed", order)
    if cs.get("status") == "complete":  # completed, its payment not settled yet
        moved = card.checkout_processing(session, order, reason=reason)
        return _outcome(moved, "processing", order)
    if cs.get("status") == "expired":
        moved = card.checkout_closed(session, order, OrderStatus.EXPIRED, reason=reason)
        return _outcome(moved, "expired", order)
    session.flush()
    return f"awaiting_payment:{order.status}"


def _order_for_payment(
    session: Session, obj: Mapping[str, Any], charge_id: str | None
) -> Order | None:
    return card.lock_card_order(
        session,
        charge_id=charge_id,
        payment_intent_id=_id_of(obj.get("payment_intent")),
        order_id=_metadata_order_id(obj),
    )


def _on_charge(session: Session, charge: Mapping[str, Any], event_id: str) -> str:
    charge_id = _id_of(charge)
    order = _order_for_payment(session, charge, charge_id)
    if order is None:
        logger.warning("Stripe charge %s matches no order", charge_id)
        return "unknown_order"
    card.attach_processor_ids(
        order, charge_id=charge_id, payment_intent_id=_id_of(charge.get("payment_intent"))
    )
    reason = f"Stripe charge {charge_id} refunded ({event_id})"
    if charge.get("refunded"):
        return _outcome(card.refunded(session, order, reason=reason), "refunded", order)
    if amount_refunded := int(charge.get("amount_refunded") or 0):
        card.partially_refunded(session, order, amount_refunded, reason=reason)
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
    card.attach_processor_ids(order, dispute_id=dispute_id, charge_id=_id_of(dispute.get("charge")))
    status = str(dispute.get("status"))
    reason = f"Stripe dispute {dispute_id} {status} ({event_id})"
    if status in _DISPUTE_RESOLVED_FOR_MERCHANT:
        return _outcome(card.dispute_won(session, order, reason=reason), "dispute_won", order)
    if status == "lost":
        return _outcome(card.dispute_lost(session, order, reason=reason), "dispute_lost", order)
    if status in _DISPUTE_OPEN:
        return _outcome(card.dispute_opened(session, order, reason=reason), "disputed", order)
    session.flush()
    return f"noop:{order.status}"
