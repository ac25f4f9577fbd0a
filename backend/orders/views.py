"""Building order bodies (inside `run_sync`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from backend.catalog.models import Token
from backend.catalog.service import tokens_by_address
from backend.catalog.views import token_out
from backend.chain.tx import UnsignedTx
from backend.orders.models import Order
from backend.orders.schemas import OrderOut, TxOut


def order_out(order: Order, tokens: dict[str, Token]) -> OrderOut:
    """One order's body."""
    return OrderOut(
        id=order.id,
        rail=order.rail,
        course_id=order.course_id,
        buyer=order.buyer,
        recipient=order.recipient,
        amount=order.amount,
        token=token_out(tokens, order.token) if order.token else None,
        currency=order.currency,
        fee=order.fee,
        status=order.status,
        order_ref=order.order_ref,
        expires_at=order.expires_at,
        chain_id=order.chain_id,
        tx_hash=order.tx_hash,
        log_index=order.log_index,
        block_number=order.block_number,
        confirmed=order.confirmed,
        stripe_checkout_session_id=order.stripe_checkout_session_id,
        stripe_payment_intent_id=order.stripe_payment_intent_id,
        anomalies=list(order.anomalies or []),
        created_at=order.created_at,
        paid_at=order.paid_at,
    )


def orders_out(session: Session, orders: Sequence[Order]) -> list[OrderOut]:
    """Several orders' bodies."""
    tokens = tokens_by_address(session)
    return [order_out(o, tokens) for o in orders]


def tx_out(tx: UnsignedTx) -> TxOut:
    """An unsigned transaction's body."""
    return TxOut(to=tx.to, data=tx.data, value=tx.value, chain_id=tx.chain_id)
