"""Building order bodies (inside `run_sync`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from backend.catalog.models import Token
from backend.catalog.service import TokenKey, get_course, tokens_by_key
from backend.catalog.views import token_out
from backend.chain import tx as txs
from backend.chain.tx import UnsignedTx
from backend.core.security import NATIVE_TOKEN
from backend.orders.models import Order
from backend.orders.schemas import CryptoQuoteOut, OrderOut, TxOut
from backend.orders.service import create_crypto_quote, visible_order


def order_out(order: Order, tokens: Mapping[TokenKey, Token]) -> OrderOut:
    """One order's body."""
    return OrderOut(
        id=order.id,
        rail=order.rail,
        course_id=order.course_id,
        buyer=order.buyer,
        recipient=order.recipient,
        amount=order.amount,
        token=(
            token_out(tokens, order.chain_id, order.token)
            if order.token and order.chain_id is not None
            else None
        ),
        currency=order.currency,
        fee=order.fee,
        status=order.status,
        order_ref=order.order_ref,
        expires_at=order.expires_at,
        quoted_refund_window=order.quoted_refund_window,
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
    tokens = tokens_by_key(session)
    return [order_out(o, tokens) for o in orders]


def tx_out(tx: UnsignedTx) -> TxOut:
    """An unsigned transaction's body."""
    return TxOut(to=tx.to, data=tx.data, value=tx.value, chain_id=tx.chain_id)


def crypto_quote_out(
    session: Session,
    *,
    buyer: str,
    course_id: int,
    token: str,
    recipient: str,
    market: str,
    chain_id: int,
) -> CryptoQuoteOut:
    """A pending crypto order at the current price, with the purchase transaction to sign (and
    the ERC-20 approval it needs first)."""
    course = get_course(session, course_id)
    order = create_crypto_quote(
        session, course=course, chain_id=chain_id, buyer=buyer, token=token, recipient=recipient
    )
    onchain_id = course.onchain_id_on(chain_id)
    assert onchain_id is not None and order.token is not None
    native = order.token == NATIVE_TOKEN
    purchase = txs.purchase(
        market,
        chain_id,
        course_id=onchain_id,
        token=order.token,
        max_amount=order.amount,
        recipient=recipient,
        order_ref=order.order_ref,
        quoted_window=order.quoted_refund_window or 0,
        native=native,
    )
    approval = None if native else txs.approve(order.token, chain_id, market, order.amount)
    return CryptoQuoteOut(
        order=order_out(order, tokens_by_key(session)),
        transaction=tx_out(purchase),
        approval=tx_out(approval) if approval else None,
    )


def visible_order_out(session: Session, order_id: str, viewer: str) -> OrderOut:
    """One order, for its buyer, its recipient or the course's provider."""
    return order_out(visible_order(session, order_id, viewer), tokens_by_key(session))
