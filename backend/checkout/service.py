"""Card checkout: a pending card order plus a Stripe Checkout Session for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backend.access.service import active_entitlement
from backend.catalog.models import Course, CourseStatus
from backend.catalog.service import get_course
from backend.core.errors import ConflictError, NotFoundError
from backend.integrations.stripe_gateway import StripeGateway
from backend.orders import service as orders
from backend.orders.models import Order, Rail
from backend.payouts import connect
from backend.payouts.fees import split


@dataclass(frozen=True)
class Checkout:
    """The hosted page to redirect to."""

    url: str
    order_id: str
    session_id: str


@dataclass(frozen=True)
class _Prepared:
    course: Course
    reusable: Order | None
    # The provider's ready Connect account: the payment is a destination charge to it.
    destination: str | None


def _prepare(session: Session, course_id: int, buyer: str, require_connect: bool) -> _Prepared:
    course = get_course(session, course_id)
    if course.status != CourseStatus.PUBLISHED:
        raise NotFoundError(f"course {course_id} is not for sale", code="course_not_found")
    if course.fiat_price is None or course.fiat_currency is None:
        raise ConflictError("this course has no card price", code="no_fiat_price")
    if course.fiat_price == 0:
        raise ConflictError("this course is free: claim it instead", code="free_course")
    orders.ensure_not_entitled(session, buyer, course.id)
    if orders.card_payment_in_flight(session, course_id=course.id, buyer=buyer):
        # A second checkout now could take the money twice.
        raise ConflictError(
            "a card payment of yours for this course is still being processed or reviewed",
            code="payment_in_progress",
        )
    account = connect.ready_account(session, course.provider)
    if account is None and require_connect:
        raise ConflictError(
            "this course's provider has not finished setting up card payouts",
            code="provider_not_onboarded",
        )
    return _Prepared(
        course=course,
        reusable=orders.open_card_order(session, course_id=course.id, buyer=buyer),
        destination=account.stripe_account_id if account is not None else None,
    )


async def start_checkout(
    session: AsyncSession,
    gateway: StripeGateway,
    *,
    course_id: int,
    buyer: str,
    fee_bps: Callable[[], Awaitable[int]],
    require_connect: bool = False,
) -> Checkout:
    """Create (or reuse, on a double click) a pending card order and its Checkout Session.

    When the course's provider has a ready Connect account, the payment is a destination charge
    to it with the platform fee (`fee_bps()`, the market contract's) as the application fee;
    otherwise the platform collects it, unless `require_connect` refuses the sale.
    """
    prepared = await session.run_sync(_prepare, course_id, buyer, require_connect)
    course, reusable = prepared.course, prepared.reusable
    if reusable is not None and reusable.checkout_url and reusable.stripe_checkout_session_id:
        return Checkout(
            url=reusable.checkout_url,
            order_id=reusable.id,
            session_id=reusable.stripe_checkout_session_id,
        )
    assert course.fiat_price is not None and course.fiat_currency is not None
    fee = split(course.fiat_price, await fee_bps()).fee if prepared.destination else 0
    order = await session.run_sync(
        lambda s: orders.create_card_order(
            s,
            course=course,
            buyer=buyer,
            amount=course.fiat_price or 0,
            currency=course.fiat_currency or "",
        )
    )
    assert order.expires_at is not None
    order.fee = fee
    order.stripe_destination = prepared.destination
    # If Stripe fails, the exception rolls the order back with the request's transaction.
    cs = await gateway.create_checkout_session(
        order_id=order.id,
        order_ref=order.order_ref,
        course_id=course.id,
        title=course.title,
        address=buyer,
        amount=order.amount,
        currency=order.currency or "",
        expires_at=order.expires_at,
        destination=prepared.destination,
        application_fee=fee,
    )
    order.stripe_checkout_session_id = str(cs["id"])
    order.checkout_url = str(cs["url"])
    await session.flush()
    return Checkout(url=order.checkout_url, order_id=order.id, session_id=str(cs["id"]))


@dataclass(frozen=True)
class CheckoutStatus:
    """What the return page shows of a card order."""

    order: Order
    course_title: str
    has_access: bool


def _status(session: Session, order: Order) -> CheckoutStatus:
    entitlement = active_entitlement(session, order.recipient, order.course_id)
    return CheckoutStatus(
        order=order,
        course_title=get_course(session, order.course_id).title,
        has_access=entitlement is not None,
    )


def checkout_status(session: Session, order_id: str, address: str) -> CheckoutStatus:
    """A card order of `address` and whether access is granted."""
    order = orders.get_order(session, order_id)
    if address not in (order.buyer, order.recipient):
        raise NotFoundError(f"order {order_id} does not exist", code="order_not_found")
    return _status(session, order)


def checkout_status_by_session(
    session: Session, checkout_session_id: str, address: str
) -> CheckoutStatus:
    """The card order of a Checkout Session, for its buyer only.

    Stripe's success_url carries the session id, so the return page finds its order in any tab
    or browser. The id is no secret (it is in the learner's address bar and history): whoever
    else asks gets the same 404 as for an unknown session.
    """
    order = session.scalar(
        select(Order).where(
            Order.rail == Rail.CARD, Order.stripe_checkout_session_id == checkout_session_id
        )
    )
    if order is None or order.buyer != address:
        raise NotFoundError(
            "no card order of yours has this checkout session", code="order_not_found"
        )
    return _status(session, order)
