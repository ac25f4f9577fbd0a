"""Recording card purchases and card refunds on-chain (CourseMarket.grantAccess/revokeAccess).

The database decides (the learner's entitlement from the paid card order); the chain mirrors it
so `hasAccess` answers for both rails. Idempotent: the chain is asked first and nothing is sent
when it already agrees; sends go through the sender under a per-order key; the contract refuses a
second grant (`AlreadyHasAccess`), and a refused estimate is re-judged against the chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.access.models import Entitlement
from backend.catalog.models import Course
from backend.core.db import session_scope
from backend.orders.models import Order, Rail
from backend.worker.chain import (
    SOURCE_CARD,
    Chain,
    access_record,
    has_access,
)
from backend.worker.errors import (
    PermanentError,
    RetryableError,
    TxRevertedError,
    TxWouldRevertError,
)
from backend.worker.sender import TxSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardOrder:
    """What the worker needs of a card order, read in one short transaction."""

    id: str
    course_onchain_id: int
    learner: str
    ref: bytes  # bytes32
    entitled_by_this_order: bool  # an active entitlement from this order
    entitled: bool  # any active entitlement of (course, learner)


def order_ref_bytes(order_ref: str) -> bytes:
    """The bytes32 `ref` of an order: its 0x hex `order_ref`, or keccak of the order id."""
    raw = bytes.fromhex(order_ref.removeprefix("0x"))
    if len(raw) != 32:
        raise PermanentError(f"order_ref {order_ref!r} is not bytes32")
    return raw


def load_card_order(factory: sessionmaker[Session], order_id: str) -> CardOrder:
    """The card order `order_id` with its entitlement state."""
    with session_scope(factory) as s:
        order = s.get(Order, order_id)
        if order is None:
            raise PermanentError(f"order {order_id} does not exist")
        if order.rail != Rail.CARD:
            raise PermanentError(f"order {order_id} is not a card order")
        course = s.get(Course, order.course_id)
        if course is None or course.onchain_id is None:
            raise RetryableError(f"course {order.course_id} has no on-chain id yet")
        active = s.scalars(
            select(Entitlement).where(
                Entitlement.course_id == order.course_id,
                Entitlement.address == order.recipient,
                Entitlement.revoked_at.is_(None),
            )
        ).all()
        return CardOrder(
            id=order.id,
            course_onchain_id=int(course.onchain_id),
            learner=order.recipient,
            ref=order_ref_bytes(order.order_ref),
            entitled_by_this_order=any(e.order_id == order.id for e in active),
            entitled=bool(active),
        )


def record_card_grant(
    order_id: str, *, factory: sessionmaker[Session], chain: Chain, sender: TxSender
) -> dict[str, Any]:
    """grantAccess(course, learner, Card, ref) unless the chain already grants access."""
    order = load_card_order(factory, order_id)
    result: dict[str, Any] = {"order_id": order.id}
    if not order.entitled_by_this_order:
        # Refunded (or never completed) before we got here: the revoke side handles the rest.
        return {**result, "outcome": "not_entitled"}
    market = chain.market
    base = f"grant:{market.address}:{order.ref.hex()}"
    if has_access(chain, order.course_onchain_id, order.learner):
        sender.settle_operation(base)
        return {**result, "outcome": "already_on_chain"}
    data = market.encode_abi(
        "grantAccess", args=[order.course_onchain_id, order.learner, SOURCE_CARD, order.ref]
    )
    key = sender.fresh_key(base)
    try:
        tx = sender.send(key, market.address, data)
        mined = sender.wait(tx)
    except (TxWouldRevertError, TxRevertedError):
        if has_access(chain, order.course_onchain_id, order.learner):
            return {**result, "outcome": "already_on_chain"}
        raise
    log.info("order %s: card access recorded on-chain in %s", order.id, mined.tx_hash)
    return {**result, "outcome": "granted", "tx_hash": mined.tx_hash}


def record_card_revoke(
    order_id: str, *, factory: sessionmaker[Session], chain: Chain, sender: TxSender
) -> dict[str, Any]:
    """revokeAccess(course, learner, ref) when the on-chain access is this order's card grant."""
    order = load_card_order(factory, order_id)
    result: dict[str, Any] = {"order_id": order.id}
    if order.entitled:
        # Still entitled in the DB (another order, an admin grant): the chain keeps access.
        return {**result, "outcome": "still_entitled"}
    market = chain.market
    base = f"revoke:{market.address}:{order.ref.hex()}"
    source, digest = access_record(chain, order.course_onchain_id, order.learner)
    if source == 0:
        sender.settle_operation(base)
        return {**result, "outcome": "already_revoked"}
    if source != SOURCE_CARD or digest != order.ref[:21]:
        # Bought on-chain since, or card access of another order: not ours to revoke.
        return {**result, "outcome": "not_this_order", "source": source}
    data = market.encode_abi(
        "revokeAccess", args=[order.course_onchain_id, order.learner, order.ref]
    )
    key = sender.fresh_key(base)
    try:
        tx = sender.send(key, market.address, data)
        mined = sender.wait(tx)
    except (TxWouldRevertError, TxRevertedError):
        if not has_access(chain, order.course_onchain_id, order.learner):
            return {**result, "outcome": "already_revoked"}
        raise
    log.info("order %s: card access revoked on-chain in %s", order.id, mined.tx_hash)
    return {**result, "outcome": "revoked", "tx_hash": mined.tx_hash}
