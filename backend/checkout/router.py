"""/api/v1/checkout/stripe: pay by card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from backend.checkout import service
from backend.checkout.schemas import CheckoutIn, CheckoutOut, CheckoutStatusOut
from backend.core.deps import CurrentUser, DbSession, ServicesDep

router = APIRouter(prefix="/checkout", tags=["checkout"])


@router.post("/stripe", response_model=CheckoutOut, status_code=201)
async def start_stripe_checkout(
    body: CheckoutIn, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> CheckoutOut:
    """A pending card order and a Stripe Checkout Session; redirect the learner to `url`."""
    checkout = await service.start_checkout(
        session, services.stripe, course_id=body.course_id, buyer=principal.address
    )
    return CheckoutOut(url=checkout.url, order_id=checkout.order_id, session_id=checkout.session_id)


@router.get("/stripe/{order_id}", response_model=CheckoutStatusOut)
async def stripe_checkout_status(
    order_id: Annotated[str, Path(max_length=36)], principal: CurrentUser, session: DbSession
) -> CheckoutStatusOut:
    """The order's status (the return page polls this until `paid`)."""
    order, has_access = await session.run_sync(service.checkout_status, order_id, principal.address)
    return CheckoutStatusOut(order_id=order.id, status=order.status, has_access=has_access)
