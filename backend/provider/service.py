"""Provider views: sales across both rails and on-chain balances."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.catalog import service as catalog
from backend.catalog.models import Course, Token
from backend.catalog.schemas import CourseCreateIn, CourseDetailOut, CourseOut, LessonIn, LessonOut
from backend.catalog.views import course_detail_out, courses_out, token_out
from backend.chain import tx as txs
from backend.chain.client import (
    ChainClient,
    ChainError,
    course_provider,
    escrow_of,
    withdrawable_of,
)
from backend.core.errors import ConflictError, InvalidInputError, NotFoundError, UpstreamError
from backend.core.security import checksum_address
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.schemas import TxOut
from backend.orders.service import get_order
from backend.orders.views import orders_out, tx_out
from backend.payouts.schemas import PayoutOut, PayoutsOut
from backend.payouts.service import payouts_of
from backend.provider.schemas import SalesOut, SalesTotalOut, SetPriceIn


@dataclass
class SalesTotal:
    """Running totals of one (rail, unit), of one course or of all."""

    rail: str
    chain_id: int | None  # crypto sales: the chain paid on
    token: str | None
    currency: str | None
    course_id: int | None = None
    orders: int = 0
    gross: int = 0
    refunded: int = 0
    fees: int = 0

    @property
    def net(self) -> int:
        """Gross minus refunded and charged-back amounts."""
        return self.gross - self.refunded


def provider_sales(
    session: Session, provider: str, *, confirmed_only: bool, limit: int
) -> tuple[Sequence[Order], list[SalesTotal], list[SalesTotal]]:
    """The provider's settled orders (newest `limit`) and exact totals per rail and unit, over
    all courses and per course.

    Totals are summed in Python over integers: exact on every database (SQLite would sum the
    zero-padded amount strings as floats).
    """
    stmt = (
        select(Order)
        .join(Course, Course.id == Order.course_id)
        .where(Course.provider == provider, Order.status.in_(OrderStatus.SETTLED))
    )
    if confirmed_only:
        stmt = stmt.where(or_(Order.rail == Rail.CARD, Order.confirmed.is_(True)))
    orders = session.scalars(stmt.order_by(Order.paid_at.desc(), Order.id)).all()
    totals: dict[tuple[str, int | None, str | None, str | None, int | None], SalesTotal] = {}
    for order in orders:
        for course_id in (None, order.course_id):
            chain_id = order.chain_id if order.rail == Rail.CRYPTO else None
            key = (order.rail, chain_id, order.token, order.currency, course_id)
            total = totals.setdefault(key, SalesTotal(*key))
            total.orders += 1
            total.gross += order.amount
            total.fees += order.fee
            if order.status in (OrderStatus.REFUNDED, OrderStatus.LOST):
                total.refunded += order.amount

    def order_key(t: SalesTotal) -> tuple[int, str, int, str, str]:
        return (t.course_id or 0, t.rail, t.chain_id or 0, t.token or "", t.currency or "")

    ordered = sorted(totals.values(), key=order_key)
    overall = [t for t in ordered if t.course_id is None]
    per_course = [t for t in ordered if t.course_id is not None]
    return orders[:limit], overall, per_course


async def balances(
    chain: ChainClient, market: str, provider: str, tokens: Sequence[Token]
) -> list[tuple[Token, int, int, int]]:
    """(token, withdrawable, escrow net, escrow fee) for each token, queried concurrently."""

    async def one(token: Token) -> tuple[Token, int, int, int]:
        withdrawable = await withdrawable_of(chain, market, provider, token.address)
        net, fee = await escrow_of(chain, market, provider, token.address)
        return token, withdrawable, net, fee

    try:
        return list(await asyncio.gather(*(one(t) for t in tokens)))
    except ChainError as exc:
        raise UpstreamError(f"the chain node did not answer: {exc}", code="chain_error") from exc


async def onchain_provider(chain: ChainClient, market: str, onchain_id: int) -> str:
    """Who the market pays out for on-chain course `onchain_id` (links come from the chain).

    Raises:
        NotFoundError: the market has no such course (yet): nothing to link.
        UpstreamError: the chain node did not answer.
    """
    try:
        provider = await course_provider(chain, market, onchain_id)
    except ChainError as exc:
        raise UpstreamError(f"the chain node did not answer: {exc}", code="chain_error") from exc
    if provider is None:
        raise NotFoundError(
            f"the market has no course {onchain_id}", code="onchain_course_not_found"
        )
    return checksum_address(provider)


# ------------------------------------------------------------------ the provider's workspace
# Each takes the signed-in provider's address and returns the API's response model; ownership
# is checked here (`catalog.get_owned_course`: another provider's course is a 404).


def _actor(address: str) -> str:
    return f"user:{address}"


def my_courses(s: Session, provider: str, *, chain_id: int) -> list[CourseOut]:
    """The provider's courses, every status."""
    return courses_out(s, catalog.list_by_provider(s, provider), chain_id=chain_id)


def create_course(
    s: Session, provider: str, body: CourseCreateIn, *, chain_id: int
) -> CourseDetailOut:
    """A draft course paid out to the provider's wallet."""
    course = catalog.create_course(
        s,
        provider=provider,
        title=body.title,
        description=body.description,
        refund_window=body.refund_window,
    )
    return course_detail_out(s, course, chain_id=chain_id)


def update_course(
    s: Session, provider: str, course_id: int, changes: dict[str, Any], *, chain_id: int
) -> CourseDetailOut:
    """Change title, description, status or refund window of an owned course."""
    course = catalog.get_owned_course(s, course_id, provider)
    catalog.update_course(s, course, actor=_actor(provider), **changes)
    return course_detail_out(s, course, chain_id=chain_id)


def set_fiat_price(
    s: Session,
    provider: str,
    course_id: int,
    amount: int | None,
    currency: str | None,
    *,
    chain_id: int,
) -> CourseDetailOut:
    """Set (or with None, clear) the card price of an owned course."""
    course = catalog.get_owned_course(s, course_id, provider)
    catalog.set_fiat_price(s, course, amount=amount, currency=currency, actor=_actor(provider))
    return course_detail_out(s, course, chain_id=chain_id)


def put_lesson(
    s: Session, provider: str, course_id: int, position: int, body: LessonIn
) -> LessonOut:
    """Create lesson `position` (the next number) or replace an existing one."""
    course = catalog.get_owned_course(s, course_id, provider)
    lesson = catalog.upsert_lesson(s, course, position=position, title=body.title, body=body.body)
    return LessonOut(
        course_id=course.id, position=lesson.position, title=lesson.title, body=lesson.body
    )


def link_onchain(
    s: Session,
    provider: str,
    course_id: int,
    chain_id: int,
    onchain_id: int,
    onchain_provider: str,
) -> CourseDetailOut:
    """Link an owned course to the on-chain course of `chain_id` `onchain_provider` is paid for."""
    course = catalog.get_owned_course(s, course_id, provider)
    catalog.set_onchain_id(
        s, course, chain_id, onchain_id, actor=_actor(provider), onchain_provider=onchain_provider
    )
    return course_detail_out(s, course, chain_id=chain_id)


def _linked(course: Course, chain_id: int) -> int:
    onchain_id = course.onchain_id_on(chain_id)
    if onchain_id is None:
        raise ConflictError(
            f"register the course on chain {chain_id} first (tx/create-course)",
            code="course_not_onchain",
        )
    return onchain_id


def create_course_tx(
    s: Session, provider: str, course_id: int, market: str, chain_id: int
) -> TxOut:
    """`createCourse(title, refundWindow)` of an owned course not yet on chain `chain_id`."""
    course = catalog.get_owned_course(s, course_id, provider)
    if (onchain_id := course.onchain_id_on(chain_id)) is not None:
        raise ConflictError(
            f"already registered on chain {chain_id} as course {onchain_id}",
            code="already_linked",
        )
    return tx_out(txs.create_course(market, chain_id, course.title, course.refund_window))


def set_price_tx(
    s: Session, provider: str, course_id: int, market: str, chain_id: int, body: SetPriceIn
) -> TxOut:
    """`setPrice(courseId, token, price)` of an owned, registered course."""
    onchain_id = _linked(catalog.get_owned_course(s, course_id, provider), chain_id)
    if s.get(Token, (chain_id, body.token)) is None:
        raise InvalidInputError(f"unknown token {body.token}", code="unknown_token")
    return tx_out(txs.set_price(market, chain_id, onchain_id, body.token, body.price))


def refund_tx(
    s: Session,
    provider: str,
    course_id: int,
    order_id: str,
    market_on: Callable[[int | None], tuple[str, int]],
) -> TxOut:
    """`refund(...)` of a paid crypto order of an owned, registered course, on the chain it was
    paid on (`market_on(order's chain id)` gives that chain's market and id)."""
    course = catalog.get_owned_course(s, course_id, provider)
    order = get_order(s, order_id)
    if order.course_id != course.id:
        raise NotFoundError(f"order {order_id} is not for this course", code="order_not_found")
    if order.rail != Rail.CRYPTO or order.status != OrderStatus.PAID or order.token is None:
        raise ConflictError("only paid crypto orders are refunded on-chain", code="not_refundable")
    market, chain_id = market_on(order.chain_id)
    onchain_id = _linked(course, chain_id)
    return tx_out(
        txs.refund(
            market,
            chain_id,
            course_id=onchain_id,
            learner=order.recipient,
            payer=order.buyer,
            token=order.token,
            amount=order.amount,
            fee=order.fee,
        )
    )


def sales_out(s: Session, provider: str, *, confirmed_only: bool, limit: int) -> SalesOut:
    """The provider's sales on both rails with totals per token/currency."""
    orders, totals, per_course = provider_sales(
        s, provider, confirmed_only=confirmed_only, limit=limit
    )
    tokens = catalog.tokens_by_key(s)

    def out(t: SalesTotal) -> SalesTotalOut:
        return SalesTotalOut(
            rail=t.rail,
            chain_id=t.chain_id,
            token=token_out(tokens, t.chain_id, t.token) if t.token and t.chain_id else None,
            currency=t.currency,
            course_id=t.course_id,
            orders=t.orders,
            gross=t.gross,
            refunded=t.refunded,
            net=t.net,
            fees=t.fees,
        )

    return SalesOut(
        orders=orders_out(s, orders),
        totals=[out(t) for t in totals],
        by_course=[out(t) for t in per_course],
    )


def payouts_out(s: Session, provider: str, *, before: int | None, limit: int) -> PayoutsOut:
    """The provider's payout ledger, newest first, with the cursor of the next page."""
    entries = payouts_of(s, provider, before=before, limit=limit)
    tokens = catalog.tokens_by_key(s)
    return PayoutsOut(
        payouts=[
            PayoutOut(
                id=e.id,
                kind=e.kind,
                chain_id=e.chain_id,
                token=token_out(tokens, e.chain_id, e.token),
                amount=e.amount,
                fee=e.fee,
                tx_hash=e.tx_hash,
                log_index=e.log_index,
                block_number=e.block_number,
                recorded_at=e.created_at,
            )
            for e in entries
        ],
        next_before=entries[-1].id if len(entries) == limit else None,
    )
