"""/api/v1/provider: course management, sales, balances and transactions to sign."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import DbSession, ServicesDep
from backend.auth.deps import CurrentUser
from backend.catalog import service as catalog
from backend.catalog.models import Course, Token
from backend.catalog.schemas import (
    CourseCreateIn,
    CourseDetailOut,
    CourseOut,
    CourseUpdateIn,
    FiatPriceIn,
    LessonIn,
    LessonOut,
    OnchainIdIn,
)
from backend.catalog.views import course_detail_out, courses_out, token_out
from backend.chain import tx as txs
from backend.core.errors import ConflictError, InvalidInputError, NotFoundError
from backend.core.openapi import errors
from backend.core.schemas import MAX_INT64, CourseId, LessonNumber
from backend.orders.models import OrderStatus, Rail
from backend.orders.schemas import TxOut
from backend.orders.service import get_order
from backend.orders.views import orders_out, tx_out
from backend.payouts.schemas import PayoutOut, PayoutsOut
from backend.payouts.service import payouts_of
from backend.provider import service
from backend.provider.schemas import (
    BalanceOut,
    BalancesOut,
    RefundTxIn,
    SalesOut,
    SalesTotalOut,
    SetPriceIn,
    WithdrawIn,
)

router = APIRouter(prefix="/provider", tags=["provider"])


def _actor(address: str) -> str:
    return f"user:{address}"


@router.get("/courses", response_model=list[CourseOut])
async def my_courses(principal: CurrentUser, session: DbSession) -> list[CourseOut]:
    """My courses, every status."""

    def build(s: Session) -> list[CourseOut]:
        return courses_out(s, catalog.list_by_provider(s, principal.address))

    result: list[CourseOut] = await session.run_sync(build)
    return result


@router.post("/courses", response_model=CourseDetailOut, status_code=201)
async def create_course(
    body: CourseCreateIn, principal: CurrentUser, session: DbSession
) -> CourseDetailOut:
    """Create a draft course paid out to my wallet."""

    def create(s: Session) -> CourseDetailOut:
        course = catalog.create_course(
            s,
            provider=principal.address,
            title=body.title,
            description=body.description,
            refund_window=body.refund_window,
        )
        return course_detail_out(s, course)

    result: CourseDetailOut = await session.run_sync(create)
    return result


@router.patch("/courses/{course_id}", response_model=CourseDetailOut, responses=errors(409))
async def update_course(
    course_id: CourseId, body: CourseUpdateIn, principal: CurrentUser, session: DbSession
) -> CourseDetailOut:
    """Change title, description, status (draft/published/delisted) or refund window."""

    def update(s: Session) -> CourseDetailOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        catalog.update_course(
            s, course, actor=_actor(principal.address), **body.model_dump(exclude_unset=True)
        )
        return course_detail_out(s, course)

    result: CourseDetailOut = await session.run_sync(update)
    return result


@router.put(
    "/courses/{course_id}/fiat-price", response_model=CourseDetailOut, responses=errors(409)
)
async def set_fiat_price(
    course_id: CourseId, body: FiatPriceIn, principal: CurrentUser, session: DbSession
) -> CourseDetailOut:
    """Set the card price (integer minor units + ISO currency; 0 makes the course free)."""

    def update(s: Session) -> CourseDetailOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        catalog.set_fiat_price(
            s, course, amount=body.amount, currency=body.currency, actor=_actor(principal.address)
        )
        return course_detail_out(s, course)

    result: CourseDetailOut = await session.run_sync(update)
    return result


@router.delete("/courses/{course_id}/fiat-price", response_model=CourseDetailOut)
async def clear_fiat_price(
    course_id: CourseId, principal: CurrentUser, session: DbSession
) -> CourseDetailOut:
    """Stop selling the course by card."""

    def update(s: Session) -> CourseDetailOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        catalog.set_fiat_price(
            s, course, amount=None, currency=None, actor=_actor(principal.address)
        )
        return course_detail_out(s, course)

    result: CourseDetailOut = await session.run_sync(update)
    return result


@router.put("/courses/{course_id}/lessons/{n}", response_model=LessonOut)
async def put_lesson(
    course_id: CourseId,
    n: LessonNumber,
    body: LessonIn,
    principal: CurrentUser,
    session: DbSession,
) -> LessonOut:
    """Create lesson `n` (the next number) or replace an existing one."""

    def put(s: Session) -> LessonOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        lesson = catalog.upsert_lesson(s, course, position=n, title=body.title, body=body.body)
        return LessonOut(
            course_id=course.id, position=lesson.position, title=lesson.title, body=lesson.body
        )

    result: LessonOut = await session.run_sync(put)
    return result


@router.put(
    "/courses/{course_id}/onchain-id",
    response_model=CourseDetailOut,
    responses=errors(409, 502, 503),
)
async def link_onchain_id(
    course_id: CourseId,
    body: OnchainIdIn,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> CourseDetailOut:
    """Link the course to its on-chain id by hand (the indexer does it from CourseCreated).

    Only an on-chain course that exists and is paid out to my wallet can be linked: 404
    `onchain_course_not_found`, 403 `not_onchain_provider`.
    """
    provider = await service.onchain_provider(
        services.chain, services.deployment.require_market(), body.onchain_id
    )

    def link(s: Session) -> CourseDetailOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        catalog.set_onchain_id(
            s,
            course,
            body.onchain_id,
            actor=_actor(principal.address),
            onchain_provider=provider,
        )
        return course_detail_out(s, course)

    result: CourseDetailOut = await session.run_sync(link)
    return result


@router.post(
    "/courses/{course_id}/tx/create-course", response_model=TxOut, responses=errors(409, 503)
)
async def tx_create_course(
    course_id: CourseId, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> TxOut:
    """`createCourse(title, refundWindow)` for my wallet to sign."""
    market = services.deployment.require_market()

    def build(s: Session) -> TxOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        if course.onchain_id is not None:
            raise ConflictError(
                f"already registered on-chain as course {course.onchain_id}", code="already_linked"
            )
        return tx_out(
            txs.create_course(
                market, services.settings.chain_id, course.title, course.refund_window
            )
        )

    result: TxOut = await session.run_sync(build)
    return result


def _linked(course: Course) -> int:
    if course.onchain_id is None:
        raise ConflictError(
            "register the course on-chain first (tx/create-course)", code="course_not_onchain"
        )
    return course.onchain_id


@router.post("/courses/{course_id}/tx/set-price", response_model=TxOut, responses=errors(409, 503))
async def tx_set_price(
    course_id: CourseId,
    body: SetPriceIn,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> TxOut:
    """`setPrice(courseId, token, price)` for my wallet to sign (price in base units)."""
    market = services.deployment.require_market()

    def build(s: Session) -> TxOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        onchain_id = _linked(course)
        if s.get(Token, body.token) is None:
            raise InvalidInputError(f"unknown token {body.token}", code="unknown_token")
        return tx_out(
            txs.set_price(market, services.settings.chain_id, onchain_id, body.token, body.price)
        )

    result: TxOut = await session.run_sync(build)
    return result


@router.post("/courses/{course_id}/tx/refund", response_model=TxOut, responses=errors(409, 503))
async def tx_refund(
    course_id: CourseId,
    body: RefundTxIn,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> TxOut:
    """`refund(courseId, learner, payer, token, amount, fee)` of a paid crypto order."""
    market = services.deployment.require_market()

    def build(s: Session) -> TxOut:
        course = catalog.get_owned_course(s, course_id, principal.address)
        onchain_id = _linked(course)
        order = get_order(s, body.order_id)
        if order.course_id != course.id:
            raise NotFoundError(
                f"order {body.order_id} is not for this course", code="order_not_found"
            )
        if order.rail != Rail.CRYPTO or order.status != OrderStatus.PAID or order.token is None:
            raise ConflictError(
                "only paid crypto orders are refunded on-chain", code="not_refundable"
            )
        return tx_out(
            txs.refund(
                market,
                services.settings.chain_id,
                course_id=onchain_id,
                learner=order.recipient,
                payer=order.buyer,
                token=order.token,
                amount=order.amount,
                fee=order.fee,
            )
        )

    result: TxOut = await session.run_sync(build)
    return result


@router.post("/tx/withdraw", response_model=TxOut, responses=errors(503))
async def tx_withdraw(body: WithdrawIn, principal: CurrentUser, services: ServicesDep) -> TxOut:
    """`withdraw(token)` for my wallet to sign."""
    return tx_out(
        txs.withdraw(services.deployment.require_market(), services.settings.chain_id, body.token)
    )


@router.get("/sales", response_model=SalesOut)
async def sales(
    principal: CurrentUser,
    session: DbSession,
    confirmed_only: Annotated[bool, Query(alias="confirmedOnly")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SalesOut:
    """My sales on both rails with totals per token/currency (`confirmedOnly`: crypto orders
    only once confirmed on-chain)."""

    def build(s: Session) -> SalesOut:
        orders, totals = service.provider_sales(
            s, principal.address, confirmed_only=confirmed_only, limit=limit
        )
        tokens = catalog.tokens_by_address(s)
        return SalesOut(
            orders=orders_out(s, orders),
            totals=[
                SalesTotalOut(
                    rail=t.rail,
                    token=token_out(tokens, t.token) if t.token else None,
                    currency=t.currency,
                    orders=t.orders,
                    gross=t.gross,
                    refunded=t.refunded,
                    net=t.net,
                    fees=t.fees,
                )
                for t in totals
            ],
        )

    result: SalesOut = await session.run_sync(build)
    return result


@router.get("/payouts", response_model=PayoutsOut)
async def payouts(
    principal: CurrentUser,
    session: DbSession,
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PayoutsOut:
    """My payout ledger from the chain, newest first: escrow released to withdrawable (with the
    platform fee released beside it) and my withdrawals."""

    def build(s: Session) -> PayoutsOut:
        entries = payouts_of(s, principal.address, before=before, limit=limit)
        tokens = catalog.tokens_by_address(s)
        return PayoutsOut(
            payouts=[
                PayoutOut(
                    id=e.id,
                    kind=e.kind,
                    token=token_out(tokens, e.token),
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

    result: PayoutsOut = await session.run_sync(build)
    return result


@router.get("/balances", response_model=BalancesOut, responses=errors(502, 503))
async def balances(
    principal: CurrentUser, session: DbSession, services: ServicesDep, response: Response
) -> BalancesOut:
    """My on-chain balances per token: withdrawable now, and still in escrow (net, fee)."""
    market = services.deployment.require_market()
    tokens = list((await session.scalars(select(Token).order_by(Token.symbol))).all())
    rows = await service.balances(services.chain, market, principal.address, tokens)
    response.headers["Cache-Control"] = "no-store"
    return BalancesOut(
        market=market,
        balances=[
            BalanceOut(
                token=token_out({t.address: t}, t.address),
                withdrawable=w,
                escrow_net=net,
                escrow_fee=fee,
            )
            for t, w, net, fee in rows
        ],
    )


__all__ = ["router"]
