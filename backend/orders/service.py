"""Orders of both rails: crypto quotes, the indexer's purchase/refund/reorg hand-offs, card order
creation, and the state transitions every rail shares (each one audited).

Indexer entry points (sync `Session`, called inside the indexer's own transaction):
`record_crypto_purchase`, `revert_crypto_purchase`, `record_crypto_refund`,
`revert_crypto_refund`. The worker may call `expire_stale_orders` periodically.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from eth_utils import keccak
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, Entitlement
from backend.access.service import active_entitlement, grant_access, revoke_access
from backend.audit.service import record as audit
from backend.catalog.models import Course, CourseStatus, TokenPrice
from backend.catalog.service import course_by_onchain_id, get_course, token_allowed
from backend.certificates.models import RevokeReason
from backend.certificates.service import revoke_for_lost_access
from backend.core.db import utcnow
from backend.core.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from backend.core.security import ZERO_REF, checksum_address, new_bytes32
from backend.orders.models import Order, OrderStatus, Rail
from backend.outbox.service import Topics, enqueue

QUOTE_TTL = timedelta(minutes=30)
CARD_ORDER_TTL = timedelta(hours=24)  # Stripe Checkout Sessions expire after 24 h by default
INDEXER = "indexer"
_RAIL_SOURCES = {Rail.CRYPTO: AccessSource.CRYPTO, Rail.CARD: AccessSource.CARD}


class _Unset:
    """The type of `UNSET` (an argument not given, where None is meaningful)."""


UNSET = _Unset()


class UnknownOnchainCourseError(NotFoundError):
    """An on-chain course id that no course here is linked to (process CourseCreated first)."""

    code = "unknown_onchain_course"


class OrderRow(NamedTuple):
    """An order's values in insert order, for writers that insert orders in bulk (the indexer's
    backfill); it has every attribute `order_snapshot` reads."""

    id: str
    rail: str
    course_id: int
    buyer: str | None
    recipient: str | None
    amount: int
    token: str | None
    fee: int
    status: str
    order_ref: str
    chain_id: int | None
    tx_hash: str | None
    log_index: int | None
    block_hash: str | None
    block_number: int | None
    confirmed: bool
    anomalies: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None

    # Card fields, never set on an order the bulk path writes (their columns stay NULL).
    @property
    def currency(self) -> None:
        """No currency: a crypto order."""
        return None

    @property
    def stripe_payment_intent_id(self) -> None:
        """No payment intent: a crypto order."""
        return None


def order_snapshot(order: Order | OrderRow) -> dict[str, Any]:
    """The audited state of an order."""
    return {
        "status": order.status,
        "rail": order.rail,
        "courseId": order.course_id,
        "buyer": order.buyer,
        "recipient": order.recipient,
        "amount": str(order.amount),
        "token": order.token,
        "currency": order.currency,
        "fee": str(order.fee),
        "txHash": order.tx_hash,
        "logIndex": order.log_index,
        "blockHash": order.block_hash,
        "confirmed": order.confirmed,
        "stripePaymentIntentId": order.stripe_payment_intent_id,
        "anomalies": list(order.anomalies or []),
    }


def transition(
    session: Session,
    order: Order,
    new_status: str,
    *,
    allowed_from: Iterable[str],
    actor: str,
    reason: str,
    before: dict[str, Any] | _Unset | None = UNSET,
) -> bool:
    """Move `order` to `new_status` if its current status allows it; audited. False: no-op.

    `before` overrides the audited prior state (None: the order is new in this transaction).
    """
    if order.status == new_status or order.status not in set(allowed_from):
        return False
    if isinstance(before, _Unset):
        before = order_snapshot(order)
    order.status = new_status
    now = utcnow()
    if new_status == OrderStatus.PAID and order.paid_at is None:
        order.paid_at = now
    if new_status in (OrderStatus.REFUNDED, OrderStatus.LOST, OrderStatus.FAILED):
        order.closed_at = now
    session.flush()
    audit(
        session,
        actor=actor,
        action=f"order.{new_status}",
        subject_type="order",
        subject_id=order.id,
        before=before,
        after=order_snapshot(order),
        reason=reason,
    )
    return True


def get_order(session: Session, order_id: str, *, lock: bool = False) -> Order:
    """An order by id, or 404."""
    stmt = select(Order).where(Order.id == order_id)
    if lock:
        stmt = stmt.with_for_update()
    order = session.scalar(stmt)
    if order is None:
        raise NotFoundError(f"order {order_id} does not exist", code="order_not_found")
    return order


def visible_order(session: Session, order_id: str, viewer: str) -> Order:
    """An order its buyer, its recipient or the course's provider may see; 404 for anyone else
    (as if it did not exist)."""
    order = get_order(session, order_id)
    course = session.get(Course, order.course_id)
    if viewer not in (order.buyer, order.recipient) and (
        course is None or course.provider != viewer
    ):
        raise NotFoundError(f"order {order_id} does not exist", code="order_not_found")
    return order


def refundable_order(
    session: Session, order_id: str, actor: str, admins: frozenset[str]
) -> tuple[Order, Course]:
    """A paid order `actor` (the course's provider or an admin) may refund, locked.

    Raises:
        NotFoundError: no such order.
        ForbiddenError: not the course's provider nor an admin (`not_course_provider`).
        ConflictError: the order is not paid (`not_refundable`).
    """
    order = get_order(session, order_id, lock=True)
    course = get_course(session, order.course_id)
    if actor != course.provider and actor not in admins:
        raise ForbiddenError(
            "only the course's provider or an admin may refund", code="not_course_provider"
        )
    # A card payment that needs review is refunded like a paid one (the admin's other choice).
    refundable: tuple[str, ...] = (OrderStatus.PAID,)
    if order.rail == Rail.CARD:
        refundable = (OrderStatus.PAID, OrderStatus.NEEDS_REVIEW)
    if order.status not in refundable:
        raise ConflictError(
            f"only paid orders can be refunded (this one is {order.status})",
            code="not_refundable",
        )
    return order, course


def note_refund_requested(
    session: Session, order: Order, *, actor: str, refund_id: str | None, amount: Any
) -> None:
    """Remember (and audit, once) that a card refund was asked of the processor; the refund
    itself ends the order when its webhook arrives."""
    first = order.refund_requested_at is None
    order.refund_requested_at = order.refund_requested_at or utcnow()
    session.flush()
    if first:
        audit(
            session,
            actor=actor,
            action="order.refund_requested",
            subject_type="order",
            subject_id=order.id,
            after={"refundId": refund_id, "amount": str(amount)},
            reason="refund requested from Stripe",
        )


def orders_of(session: Session, address: str, *, limit: int = 200) -> Sequence[Order]:
    """Orders an address bought or received, newest first."""
    return session.scalars(
        select(Order)
        .where(or_(Order.buyer == address, Order.recipient == address))
        .order_by(Order.created_at.desc(), Order.id)
        .limit(limit)
    ).all()


def _new_order_id() -> str:
    return str(uuid.uuid4())


def ensure_not_entitled(session: Session, address: str, course_id: int) -> None:
    """409 if `address` already has access to the course."""
    if active_entitlement(session, address, course_id) is not None:
        raise ConflictError(f"{address} already has access to this course", code="already_entitled")


# ------------------------------------------------------------------------------ paid / ended
# Every rail ends here: the indexer (crypto), the Stripe webhook (card). Access and the rail's
# side effects follow the order, never the other way round.


def mark_paid(
    session: Session,
    order: Order,
    *,
    actor: str,
    reason: str,
    allowed_from: Iterable[str] = (OrderStatus.PENDING,),
    before: dict[str, Any] | _Unset | None = UNSET,
) -> bool:
    """Move `order` to paid, grant its access and queue the rail's side effects.

    The one way an order of any rail becomes paid. A no-op (False) when the order's status does
    not allow it. A card order's first payment queues its receipt; its access is then recorded
    on-chain by the worker, a crypto order's access is on-chain already.
    """
    first_payment = order.paid_at is None
    if not transition(
        session,
        order,
        OrderStatus.PAID,
        allowed_from=allowed_from,
        actor=actor,
        reason=reason,
        before=before,
    ):
        return False
    grant_order_access(session, order, actor=actor, reason=reason)
    if order.rail == Rail.CARD and first_payment:
        enqueue(
            session,
            Topics.RECEIPT_EMAIL,
            {"orderId": order.id, "address": order.buyer},
            dedupe_key=f"{Topics.RECEIPT_EMAIL}:{order.id}",
        )
    return True


def mark_ended(
    session: Session,
    order: Order,
    status: str,
    *,
    actor: str,
    reason: str,
    allowed_from: Iterable[str],
    certificate_reason: int | None = None,
) -> bool:
    """Move `order` to an ending status (refunded, disputed, lost, reverted) and end its access.

    The one way an order of any rail stops paying for access. A no-op (False) when the order's
    status does not allow it. With `certificate_reason` (refunded, dispute lost) the learner's
    certificate is revoked too once no access is left. A refunded card order queues its
    refund receipt.
    """
    if not transition(
        session, order, status, allowed_from=allowed_from, actor=actor, reason=reason
    ):
        return False
    end_order_access(
        session,
        address=order.recipient,
        course_id=order.course_id,
        order_id=order.id,
        on_chain=order.rail == Rail.CRYPTO,
        actor=actor,
        reason=reason,
        certificate_reason=certificate_reason,
    )
    if order.rail == Rail.CARD and status == OrderStatus.REFUNDED:
        enqueue(
            session,
            Topics.RECEIPT_EMAIL,
            {"orderId": order.id, "address": order.buyer, "kind": "refunded"},
            dedupe_key=f"{Topics.RECEIPT_EMAIL}:refunded:{order.id}",
        )
    return True


def source_for_rail(rail: str) -> str:
    """The entitlement source of an order paid on `rail`."""
    return _RAIL_SOURCES[rail]


def grant_order_access(session: Session, order: Order, *, actor: str, reason: str) -> Entitlement:
    """The access a paid order gives its recipient (idempotent)."""
    return grant_access(
        session,
        address=order.recipient,
        course_id=order.course_id,
        source=source_for_rail(order.rail),
        order_id=order.id,
        actor=actor,
        reason=reason,
        # A crypto purchase's access is on-chain already; a card order's is recorded by the worker.
        on_chain=order.rail == Rail.CRYPTO,
        chain_ref=order.order_ref if order.rail == Rail.CARD else None,
        chain_id=order.chain_id if order.rail == Rail.CRYPTO else None,
    )


def end_order_access(
    session: Session,
    *,
    address: str,
    course_id: int,
    order_id: str | None,
    on_chain: bool,
    actor: str,
    reason: str,
    certificate_reason: int | None = None,
) -> Entitlement | None:
    """End the access `order_id` pays for; returns the entitlement revoked, or None.

    If another paid order of the same learner still pays for the course, access is granted
    again from it (refunding one of two payments must not remove what the other pays for).
    With `certificate_reason`, the learner's certificate is revoked once no access is left,
    also when the access had already ended (a dispute opened earlier).
    """
    revoked = revoke_access(
        session,
        address=address,
        course_id=course_id,
        order_id=order_id,
        actor=actor,
        reason=reason,
        on_chain=on_chain,
    )
    if revoked is not None and order_id is not None:
        _grant_from_another_order(session, revoked.address, course_id, order_id, actor)
    if (
        certificate_reason is not None
        and active_entitlement(session, checksum_address(address), course_id) is None
    ):
        revoke_for_lost_access(
            session,
            course_id=course_id,
            address=checksum_address(address),
            reason_code=certificate_reason,
            reason=reason,
            actor=actor,
        )
    return revoked


def _grant_from_another_order(
    session: Session, address: str, course_id: int, ended_order_id: str, actor: str
) -> Entitlement | None:
    other = session.scalar(
        select(Order)
        .where(
            Order.recipient == address,
            Order.course_id == course_id,
            Order.status == OrderStatus.PAID,
            Order.id != ended_order_id,
        )
        .order_by(Order.paid_at)
        .limit(1)
    )
    if other is None:
        return None
    return grant_order_access(
        session,
        other,
        actor=actor,
        reason=f"still paid by order {other.id} after order {ended_order_id} ended",
    )


# ------------------------------------------------------------------------------ crypto quotes


def create_crypto_quote(
    session: Session, *, course: Course, chain_id: int, buyer: str, token: str, recipient: str
) -> Order:
    """A pending crypto order at the current mirrored price of `chain_id`, payable for 30
    minutes on that chain."""
    if course.onchain_id_on(chain_id) is None:
        raise ConflictError(
            f"this course is not registered on chain {chain_id} yet", code="course_not_onchain"
        )
    if course.status != CourseStatus.PUBLISHED:
        raise ConflictError("this course is not for sale", code="course_not_for_sale")
    price = session.scalar(
        select(TokenPrice).where(
            TokenPrice.course_id == course.id,
            TokenPrice.chain_id == chain_id,
            TokenPrice.token == token,
            TokenPrice.accepted.is_(True),
            token_allowed(),
        )
    )
    if price is None:
        raise ConflictError(
            f"this course cannot be bought with token {token}", code="token_not_accepted"
        )
    ensure_not_entitled(session, recipient, course.id)
    order = Order(
        id=_new_order_id(),
        rail=Rail.CRYPTO,
        course_id=course.id,
        buyer=buyer,
        recipient=recipient,
        amount=price.price,
        token=token,
        fee=0,
        status=OrderStatus.PENDING,
        order_ref=new_bytes32(),
        expires_at=utcnow() + QUOTE_TTL,
        quoted_refund_window=course.refund_window,
        chain_id=chain_id,
        anomalies=[],
    )
    session.add(order)
    session.flush()
    return order


# ------------------------------------------------------------------------------ indexer hand-offs


def _normalize_hash(value: str | bytes, name: str) -> str:
    if isinstance(value, bytes | bytearray):
        value = "0x" + bytes(value).hex()
    value = value.lower()
    if not value.startswith("0x") or len(value) != 66:
        raise InvalidInputError(f"{name} must be 32 bytes of hex, got {value!r}")
    int(value, 16)
    return value


@dataclass
class _Comparison:
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, quoted: Any, paid: Any) -> None:
        if quoted != paid:
            self.anomalies.append({"field": name, "quoted": str(quoted), "paid": str(paid)})


def record_crypto_purchase(
    session: Session,
    *,
    chain_id: int,
    tx_hash: str | bytes,
    log_index: int,
    block_hash: str | bytes,
    block_number: int,
    course_onchain_id: int,
    buyer: str,
    recipient: str,
    token: str,
    amount: int,
    fee: int,
    order_ref: str | bytes,
    confirmed: bool,
) -> Order:
    """Indexer hand-off for `CoursePurchased`: mark the order paid and grant access.

    Matches the quote by `order_ref` (or creates an order when there was none). Differences from
    the quote (amount, token, recipient, buyer, expired quote) are kept on the order as anomalies
    and audited, never dropped: the chain is the truth about money. Idempotent per log; calling
    again with `confirmed=True` marks the order confirmed; a log re-mined in another block after a
    reorg re-activates its order.

    Raises:
        UnknownOnchainCourseError: the on-chain course is not linked (index CourseCreated first).
    """
    tx_hash = _normalize_hash(tx_hash, "tx_hash")
    block_hash = _normalize_hash(block_hash, "block_hash")
    order_ref = _normalize_hash(order_ref, "order_ref")
    buyer, recipient, token = (checksum_address(a) for a in (buyer, recipient, token))
    course = course_by_onchain_id(session, chain_id, course_onchain_id)
    if course is None:
        raise UnknownOnchainCourseError(
            f"on-chain course {course_onchain_id} of chain {chain_id} is not linked"
        )

    # The same log again (a retry, a confirmation, or a re-mined block).
    order = session.scalar(
        select(Order)
        .where(Order.chain_id == chain_id, Order.tx_hash == tx_hash, Order.log_index == log_index)
        .with_for_update()
    )
    if order is None:
        # The same transaction re-mined with another log index after a reorg.
        order = session.scalar(
            select(Order)
            .where(
                Order.chain_id == chain_id,
                Order.tx_hash == tx_hash,
                Order.course_id == course.id,
                Order.recipient == recipient,
                Order.status == OrderStatus.REVERTED,
            )
            .with_for_update()
        )
    if order is not None:
        seen_before = order_snapshot(order)
        order.log_index, order.block_hash, order.block_number = log_index, block_hash, block_number
        order.confirmed = order.confirmed or confirmed
        if not mark_paid(
            session,
            order,
            allowed_from=(OrderStatus.REVERTED,),
            actor=INDEXER,
            reason=f"purchase {tx_hash}:{log_index} re-mined in block {block_number}",
        ) and seen_before != order_snapshot(order):
            session.flush()
            audit(
                session,
                actor=INDEXER,
                action="order.update",
                subject_type="order",
                subject_id=order.id,
                before=seen_before,
                after=order_snapshot(order),
                reason="purchase seen again (confirmation or new block)",
            )
        if order.status == OrderStatus.PAID:
            # Seen again while paid: its access stands (a no-op unless something removed it).
            grant_order_access(
                session, order, actor=INDEXER, reason=f"on-chain purchase {tx_hash}:{log_index}"
            )
        return order

    comparison = _Comparison()
    before: dict[str, Any] | None = None
    quote = None
    if order_ref != ZERO_REF:
        quote = session.scalar(select(Order).where(Order.order_ref == order_ref).with_for_update())
    now = utcnow()
    if (
        quote is not None
        and quote.rail == Rail.CRYPTO
        and quote.tx_hash is None
        and quote.status in (OrderStatus.PENDING, OrderStatus.EXPIRED)
        and quote.course_id == course.id
        and quote.chain_id in (None, chain_id)  # a quote is for one chain's market
    ):
        order = quote
        before = order_snapshot(order)
        comparison.check("amount", order.amount, amount)
        comparison.check("token", order.token, token)
        comparison.check("recipient", order.recipient, recipient)
        comparison.check("buyer", order.buyer, buyer)
        if order.status == OrderStatus.EXPIRED or (
            order.expires_at is not None and order.expires_at < now
        ):
            comparison.anomalies.append({"field": "quote", "quoted": "expired", "paid": "late"})
    else:
        if quote is not None:
            comparison.anomalies.append(
                {
                    "field": "order_ref",
                    "quoted": quote.id,
                    "paid": "reused, or for another course or chain",
                }
            )
        elif order_ref != ZERO_REF:
            comparison.anomalies.append({"field": "order_ref", "quoted": None, "paid": order_ref})
        order = Order(
            id=_new_order_id(),
            rail=Rail.CRYPTO,
            course_id=course.id,
            status=OrderStatus.PENDING,
            # The on-chain ref is taken (or zero): derive a unique one from the log.
            order_ref="0x" + keccak(text=f"{chain_id}:{tx_hash}:{log_index}").hex(),
            anomalies=[],
        )
        session.add(order)
    order.buyer, order.recipient, order.token = buyer, recipient, token
    order.amount, order.fee = amount, fee
    order.chain_id, order.tx_hash, order.log_index = chain_id, tx_hash, log_index
    order.block_hash, order.block_number, order.confirmed = block_hash, block_number, confirmed
    order.anomalies = [*(order.anomalies or []), *comparison.anomalies]
    mark_paid(
        session,
        order,
        allowed_from=(OrderStatus.PENDING, OrderStatus.EXPIRED),
        actor=INDEXER,
        reason=f"on-chain purchase {tx_hash}:{log_index}"
        + (" with anomalies" if comparison.anomalies else ""),
        before=before,
    )
    return order


def revert_crypto_purchase(
    session: Session,
    *,
    chain_id: int,
    tx_hash: str | bytes,
    log_index: int,
    block_hash: str | bytes,
) -> Order | None:
    """Indexer hand-off for a reorg that removed a `CoursePurchased` log: revoke its access.

    A no-op if the order is now recorded in another block (the purchase re-appeared first) or
    was never recorded.
    """
    tx_hash = _normalize_hash(tx_hash, "tx_hash")
    block_hash = _normalize_hash(block_hash, "block_hash")
    order = session.scalar(
        select(Order)
        .where(Order.chain_id == chain_id, Order.tx_hash == tx_hash, Order.log_index == log_index)
        .with_for_update()
    )
    if order is None or order.block_hash != block_hash:
        return None
    if mark_ended(
        session,
        order,
        OrderStatus.REVERTED,
        allowed_from=(OrderStatus.PAID, OrderStatus.REFUNDED),
        actor=INDEXER,
        reason=f"purchase {tx_hash}:{log_index} reorganized away (block {block_hash})",
    ):
        order.confirmed = False
    return order


def record_crypto_refund(
    session: Session,
    *,
    chain_id: int,
    tx_hash: str | bytes,
    log_index: int,
    block_hash: str | bytes,
    block_number: int,
    course_onchain_id: int,
    learner: str,
    payer: str,
    token: str,
    amount: int,
    by: str,
) -> Order | None:
    """Indexer hand-off for `Refunded`: mark the purchase refunded and revoke its access.

    Idempotent per log. Returns the order, or None if no paid crypto order of this chain matched
    (then the learner's active crypto entitlement, unless another chain's purchase pays for it,
    is revoked anyway and the mismatch audited).
    """
    tx_hash = _normalize_hash(tx_hash, "tx_hash")
    block_hash = _normalize_hash(block_hash, "block_hash")
    learner, payer, token, by = (checksum_address(a) for a in (learner, payer, token, by))
    done = session.scalar(
        select(Order).where(
            Order.chain_id == chain_id,
            Order.refund_tx_hash == tx_hash,
            Order.refund_log_index == log_index,
        )
    )
    if done is not None:
        done.refund_block_hash = block_hash
        return done
    course = course_by_onchain_id(session, chain_id, course_onchain_id)
    if course is None:
        raise UnknownOnchainCourseError(
            f"on-chain course {course_onchain_id} of chain {chain_id} is not linked"
        )
    candidates = session.scalars(
        select(Order)
        .where(
            Order.rail == Rail.CRYPTO,
            Order.chain_id == chain_id,  # a refund on one chain ends that chain's purchase only
            Order.course_id == course.id,
            Order.recipient == learner,
            Order.buyer == payer,
            Order.token == token,
            Order.status == OrderStatus.PAID,
        )
        .order_by(Order.paid_at.desc())
        .with_for_update()
    ).all()
    order = next((o for o in candidates if o.amount == amount), None) or next(
        iter(candidates), None
    )
    reason = f"refunded on-chain by {by} in {tx_hash}:{log_index}"
    if order is None:
        audit(
            session,
            actor=INDEXER,
            action="order.refund_unmatched",
            subject_type="course",
            subject_id=course.id,
            after={"learner": learner, "payer": payer, "token": token, "amount": str(amount)},
            reason=reason,
        )
        active = active_entitlement(session, learner, course.id)
        paid_on = (
            None
            if active is None or active.order_id is None
            else session.scalar(select(Order.chain_id).where(Order.id == active.order_id))
        )
        if (
            active is not None
            and active.source == AccessSource.CRYPTO
            and paid_on in (None, chain_id)  # access another chain paid for stays
        ):
            end_order_access(
                session,
                address=learner,
                course_id=course.id,
                order_id=active.order_id,
                on_chain=True,
                actor=INDEXER,
                reason=reason,
                certificate_reason=RevokeReason.REFUNDED,
            )
        return None
    order.refund_tx_hash, order.refund_log_index = tx_hash, log_index
    order.refund_block_hash = block_hash
    if order.amount != amount:
        order.anomalies = [
            *(order.anomalies or []),
            {"field": "refund_amount", "quoted": str(order.amount), "paid": str(amount)},
        ]
    mark_ended(
        session,
        order,
        OrderStatus.REFUNDED,
        allowed_from=(OrderStatus.PAID,),
        actor=INDEXER,
        reason=reason,
        certificate_reason=RevokeReason.REFUNDED,
    )
    return order


def revert_crypto_refund(
    session: Session,
    *,
    chain_id: int,
    tx_hash: str | bytes,
    log_index: int,
    block_hash: str | bytes,
) -> Order | None:
    """Indexer hand-off for a reorg that removed a `Refunded` log: the purchase is paid again."""
    tx_hash = _normalize_hash(tx_hash, "tx_hash")
    block_hash = _normalize_hash(block_hash, "block_hash")
    order = session.scalar(
        select(Order)
        .where(
            Order.chain_id == chain_id,
            Order.refund_tx_hash == tx_hash,
            Order.refund_log_index == log_index,
        )
        .with_for_update()
    )
    if order is None or order.refund_block_hash != block_hash:
        return None
    order.refund_tx_hash = order.refund_log_index = order.refund_block_hash = None
    if mark_paid(
        session,
        order,
        allowed_from=(OrderStatus.REFUNDED,),
        actor=INDEXER,
        reason=f"refund {tx_hash}:{log_index} reorganized away",
    ):
        order.closed_at = None
    return order


# ------------------------------------------------------------------------------ card orders


def create_card_order(
    session: Session, *, course: Course, buyer: str, amount: int, currency: str
) -> Order:
    """A pending card order (the Checkout Session is attached by the caller)."""
    order = Order(
        id=_new_order_id(),
        rail=Rail.CARD,
        course_id=course.id,
        buyer=buyer,
        recipient=buyer,
        amount=amount,
        currency=currency,
        fee=0,
        status=OrderStatus.PENDING,
        order_ref=new_bytes32(),
        expires_at=utcnow() + CARD_ORDER_TTL,
        anomalies=[],
    )
    session.add(order)
    session.flush()
    return order


def open_card_order(session: Session, *, course_id: int, buyer: str) -> Order | None:
    """A pending, unexpired card order of this buyer for this course that has a checkout URL."""
    return session.scalar(
        select(Order)
        .where(
            Order.rail == Rail.CARD,
            Order.course_id == course_id,
            Order.buyer == buyer,
            Order.status == OrderStatus.PENDING,
            Order.checkout_url.is_not(None),
            Order.expires_at > utcnow() + timedelta(minutes=5),
        )
        .order_by(Order.created_at.desc())
        .limit(1)
    )


def card_payment_in_flight(session: Session, *, course_id: int, buyer: str) -> bool:
    """Whether Stripe holds a payment of this buyer for this course that has not granted access
    yet: an asynchronous payment settling, or one waiting for an admin's review."""
    return (
        session.scalar(
            select(Order.id)
            .where(
                Order.rail == Rail.CARD,
                Order.course_id == course_id,
                Order.buyer == buyer,
                Order.status.in_((OrderStatus.PROCESSING, OrderStatus.NEEDS_REVIEW)),
            )
            .limit(1)
        )
        is not None
    )


def expire_stale_orders(session: Session, *, now: datetime | None = None) -> int:
    """Mark pending crypto quotes past their expiry as expired (for a periodic job); returns
    the count. Card orders are expired by `backend.checkout.expiry`, which asks Stripe first."""
    now = now or utcnow()
    stale = session.scalars(
        select(Order)
        .where(
            Order.rail == Rail.CRYPTO,
            Order.status == OrderStatus.PENDING,
            Order.expires_at < now,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for order in stale:
        transition(
            session,
            order,
            OrderStatus.EXPIRED,
            allowed_from=(OrderStatus.PENDING,),
            actor="system",
            reason="not paid in time",
        )
    return len(stale)
