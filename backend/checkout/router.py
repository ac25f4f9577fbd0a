"""/api/v1/checkout/stripe: pay by card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from backend.api.deps import DbSession, ServicesDep
from backend.auth.deps import CurrentUser
from backend.chain.client import market_fee_bps
from backend.checkout import service
from backend.checkout.schemas import CheckoutIn, CheckoutOut, CheckoutStatusOut
from backend.core.openapi import errors

router = APIRouter(prefix="/checkout", tags=["checkout"])


@router.post(
    "/stripe", response_model=CheckoutOut, status_code=201, responses=errors(404, 409, 502, 503)
)
async def start_stripe_checkout(
    body: CheckoutIn, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> CheckoutOut:
    """A pending card order and a Stripe Checkout Session; redirect the learner to `url`."""

    async def fee_bps() -> int:  # the market contract's fee, read only for destination charges
        return await market_fee_bps(services.chain, services.deployment.require_market())

    checkout = await service.start_checkout(
        session,
        services.stripe,
        course_id=body.course_id,
        buyer=principal.address,
        fee_bps=fee_bps,
        require_connect=services.settings.card_requires_connect,
    )
    return CheckoutOut(url=checkout.url, order_id=checkout.order_id, session_id=checkout.session_id)


@router.get("/stripe", response_model=CheckoutStatusOut, responses=errors(404))
async def stripe_checkout_status_by_session(
    session_id: Annotated[str, Query(alias="sessionId", min_length=1, max_length=255)],
    principal: CurrentUser,
    session: DbSession,
) -> CheckoutStatusOut:
    """The order of a Checkout Session (the return page's `?session_id=` from Stripe)."""
    status = await session.run_sync(
        service.checkout_status_by_session, session_id, principal.address
    )
    return _status_out(status)


@router.get("/stripe/{order_id}", response_model=CheckoutStatusOut)
async def stripe_checkout_status(
    order_id: Annotated[str, Path(max_length=36)], principal: CurrentUser, session: DbSession
) -> CheckoutStatusOut:
    """The order's status (the return page polls this until `paid`)."""
    status = await session.run_sync(service.checkout_status, order_id, principal.address)
    return _status_out(status)


def _status_out(status: service.CheckoutStatus) -> CheckoutStatusOut:
    order = status.order
    return CheckoutStatusOut(
        order_id=order.id,
        status=order.status,
        has_access=status.has_access,
        course_id=order.course_id,
        course_title=status.course_title,
        amount=order.amount,
        currency=order.currency,
    )
