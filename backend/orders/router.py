"""/api/v1/orders: crypto quotes and refunds (both rails)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import DbSession, ServicesDep
from backend.auth.deps import CurrentUser
from backend.chain import tx as txs
from backend.core.errors import (
    ConflictError,
)
from backend.core.openapi import errors
from backend.core.schemas import OrderId
from backend.orders import service, views
from backend.orders.models import Rail
from backend.orders.schemas import CryptoOrderIn, CryptoQuoteOut, OrderOut, RefundOut
from backend.orders.views import tx_out

router = APIRouter(prefix="/orders", tags=["orders"])


@router.post(
    "/crypto", response_model=CryptoQuoteOut, status_code=201, responses=errors(404, 409, 503)
)
async def quote_crypto_order(
    body: CryptoOrderIn, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> CryptoQuoteOut:
    """A pending order at the current on-chain price (valid 30 minutes) and the purchase
    transaction (`purchase(courseId, token, maxAmount, recipient, orderRef)`) on `chainId`
    (default: the API's network)."""
    chain_id = services.chain_id_of(body.chain_id)
    return await session.run_sync(
        views.crypto_quote_out,
        buyer=principal.address,
        course_id=body.course_id,
        token=body.token,
        recipient=body.recipient or principal.address,
        market=services.deployment_on(chain_id).require_market(),
        chain_id=chain_id,
    )


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(order_id: OrderId, principal: CurrentUser, session: DbSession) -> OrderOut:
    """One order, for its buyer, its recipient or the course's provider."""
    return await session.run_sync(views.visible_order_out, order_id, principal.address)


@router.post("/{order_id}/refund", response_model=RefundOut, responses=errors(409, 502, 503))
async def refund_order(
    order_id: OrderId, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> RefundOut:
    """Refund an order (the course's provider or an admin).

    Card: a Stripe refund (idempotency key `refund:<order id>`); the `charge.refunded` webhook
    then revokes access. Crypto: the `refund(...)` transaction for the provider's wallet.
    """
    order, course = await session.run_sync(
        service.refundable_order, order_id, principal.address, services.admins
    )
    if order.rail == Rail.CRYPTO:
        # Refunded on the chain it was paid on.
        chain_id = order.chain_id or services.settings.chain_id
        onchain_id = course.onchain_id_on(chain_id)
        if onchain_id is None or order.token is None:
            raise ConflictError(
                f"order {order.id}'s course is not registered on chain {chain_id}",
                code="course_not_onchain",
            )
        tx = txs.refund(
            services.deployment_on(services.chain_id_of(chain_id)).require_market(),
            chain_id,
            course_id=onchain_id,
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
        order_id=order.id,
        payment_intent=order.stripe_payment_intent_id,
        destination_charge=order.stripe_destination is not None,
    )

    await session.run_sync(
        service.note_refund_requested,
        order,
        actor=f"user:{principal.address}",
        refund_id=refund.get("id"),
        amount=refund.get("amount"),
    )
    return RefundOut(
        order_id=order.id, rail=order.rail, status="refund_requested", refund_id=refund.get("id")
    )
