"""Card checkout bodies."""

from __future__ import annotations

from backend.core.schemas import Amount, ApiInput, ApiModel, RowId


class CheckoutIn(ApiInput):
    """Buy a course by card."""

    course_id: RowId


class CheckoutOut(ApiModel):
    """Where to send the learner (Stripe's hosted page), and the order to poll."""

    url: str
    order_id: str
    session_id: str


class CheckoutStatusOut(ApiModel):
    """What the return page polls (it may have nothing but the checkout session id)."""

    order_id: str
    status: str
    has_access: bool
    course_id: int
    course_title: str
    amount: Amount
    currency: str | None
