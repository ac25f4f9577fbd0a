"""Provider views: sales across both rails and on-chain balances."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.catalog.models import Course, Token
from backend.chain.client import (
    ChainClient,
    ChainError,
    course_provider,
    escrow_of,
    withdrawable_of,
)
from backend.core.errors import NotFoundError, UpstreamError
from backend.core.security import checksum_address
from backend.orders.models import Order, OrderStatus, Rail


@dataclass
class SalesTotal:
    """Running totals of one (rail, unit)."""

    rail: str
    token: str | None
    currency: str | None
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
) -> tuple[Sequence[Order], list[SalesTotal]]:
    """The provider's settled orders (newest `limit`) and exact totals per rail and unit.

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
    totals: dict[tuple[str, str | None, str | None], SalesTotal] = {}
    for order in orders:
        key = (order.rail, order.token, order.currency)
        total = totals.setdefault(key, SalesTotal(*key))
        total.orders += 1
        total.gross += order.amount
        total.fees += order.fee
        if order.status in (OrderStatus.REFUNDED, OrderStatus.LOST):
            total.refunded += order.amount
    ordered = sorted(totals.values(), key=lambda t: (t.rail, t.token or "", t.currency or ""))
    return orders[:limit], ordered


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
