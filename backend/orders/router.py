"""/api/v1/orders: crypto quotes and refunds (both rails)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from backend.api.deps import DbSession, ServicesDep
from backend.audit.service import record as audit
from backend.auth.deps import CurrentUser
from backend.catalog.models import Course
from backend.catalog.service import get_course, tokens_by_address
from backend.chain import tx as txs
from backend.core.db import utcnow
from backend.core.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
)
from backend.core.openapi import errors
from backend.core.schemas import OrderId
from backend.core.security import ZERO_ADDRESS
from backend.orders import service
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.schemas import CryptoOrderIn, CryptoQuoteOut, OrderOut, RefundOut
from backend.orders.views import order_out, tx_out

router = APIRouter(prefix="/orders", tags=["orders"])


@router.post(
    "/crypto", response_model=CryptoQuoteOut, status_code=201, responses=errors(404, 409, 503)
)
async def quote_crypto_order(
    body: CryptoOrderIn, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> CryptoQuoteOut:
    """A pending order at the current on-chain price (valid 30 minutes) and the purchase
    transaction (`purchase(courseId, token, maxAmount, recipient, orderRef)`)."""
    market = services.deployment.require_market()
    chain_id = services.settings.chain_id

    def quote(s: Session) -> CryptoQuoteOut:
        course = get_course(s, body.course_id)
        recipient = body.recipient or principal.address
        order = service.create_crypto_quote(
            s, course=course, buyer=principal.address, token=body.token, recipient=recipient
        )
        assert course.onchain_id is not None and order.token is not None
        native = order.token == ZERO_ADDRESS
        purchase = txs.purchase(
            market,
            chain_id,
            course_id=course.onchain_id,
            token=order.token,
            max_amount=order.amount,
            recipient=recipient,
            order_ref=order.order_ref,
            native=native,
        )
        approval = None if native else txs.approve(order.token, chain_id, market, order.amount)
        return CryptoQuoteOut(
            order=order_out(order, tokens_by_address(s)),
            transaction=tx_out(purchase),
            approval=tx_out(approval) if approval else None,
        )

    result: CryptoQuoteOut = await session.run_sync(quote)
    return result


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(order_id: OrderId, principal: CurrentUser, session: DbSession) -> OrderOut:
    """One order, for its buyer, its recipient or the course's provider."""

    def load(s: Session) -> OrderOut:
        order = service.get_order(s, order_id)
        provider = s.get(Course, order.course_id)
        if principal.address not in (order.buyer, order.recipient) and (
            provider is None or provider.provider != principal.address
        ):
            raise NotFoundError(f"order {order_id} does not exist", code="order_not_found")
        return order_out(order, tokens_by_address(s))

    result: OrderOut = await session.run_sync(load)
    return result


@router.post("/{order_id}/refund", response_model=RefundOut, responses=errors(409, 502, 503))
async def refund_order(
    order_id: OrderId, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> RefundOut:
    """Refund an order (the course's provider or an admin).

    Card: a Stripe refund (idempotency key `refund:<order id>`); the `charge.refunded` webhook
    then revokes access. Crypto: the `refund(...)` transaction for the provider's wallet.
    """
    actor = f"user:{principal.address}"

    def load(s: Session) -> tuple[Order, Course]:
        order = service.get_order(s, order_id, lock=True)
        course = get_course(s, order.course_id)
        if principal.address != course.provider and principal.address not in services.admins:
            raise ForbiddenError(
                "only the course's provider or an admin may refund", code="not_course_provider"
            )
        if order.status != OrderStatus.PAID:
            raise ConflictError(
                f"only paid orders can be refunded (this one is {order.status})",
                code="not_refundable",
            )
        return order, course

    order, course = await session.run_sync(load)
    if order.rail == Rail.CRYPTO:
        assert course.onchain_id is not None and order.token is not None
        tx = txs.refund(
            services.deployment.require_market(),
            services.settings.chain_id,
            course_id=course.onchain_id,
            learner=order.recipient,
            payer=order.buyer,
            token=order.token,
            amount=order.amount,
            fee=order.fee,
        )
        return RefundOut(
            order_id=order.id, rail=order.rail, status="sign_transaction", transaction=tx_out(tx)
        )
    if not order.stripe_payment_intent_id:
        raise ConflictError("this card order has no payment to refund", code="not_refundable")
    refund = await services.stripe.refund(
        order_id=order.id, payment_intent=order.stripe_payment_intent_id
    )

    def mark(s: Session) -> None:
        first = order.refund_requested_at is None
        order.refund_requested_at = order.refund_requested_at or utcnow()
        s.flush()
        if first:
            audit(
                s,
                actor=actor,
                action="order.refund_requested",
                subject_type="order",
                subject_id=order.id,
                after={"refundId": refund.get("id"), "amount": str(refund.get("amount"))},
                reason="refund requested from Stripe",
            )

    await session.run_sync(mark)
    return RefundOut(
        order_id=order.id, rail=order.rail, status="refund_requested", refund_id=refund.get("id")
    )
