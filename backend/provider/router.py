"""/api/v1/provider: course management, sales, balances and transactions to sign."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import ChainIdQuery, DbSession, ServicesDep
from backend.auth.deps import CurrentUser
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
from backend.catalog.views import token_out
from backend.certificates import service as certificates
from backend.certificates.schemas import CertificateRevokeIn, IssuedCertificateOut
from backend.chain import tx as txs
from backend.core.openapi import errors
from backend.core.schemas import (
    MAX_INT32,
    MAX_INT64,
    AddressStr,
    CertificateId,
    CourseId,
    LessonNumber,
)
from backend.orders.schemas import TxOut
from backend.orders.views import tx_out
from backend.payouts import connect
from backend.payouts.models import ConnectAccount
from backend.payouts.schemas import (
    CardBalanceOut,
    CardPayoutOut,
    ConnectAccountOut,
    MoneyOut,
    OnboardingOut,
    PayoutsOut,
)
from backend.provider import profiles, service
from backend.provider.schemas import (
    BalanceOut,
    BalancesOut,
    ProviderProfileIn,
    ProviderProfileOut,
    RefundTxIn,
    SalesOut,
    SetPriceIn,
    WithdrawIn,
)

router = APIRouter(prefix="/provider", tags=["provider"])


@router.get("/courses", response_model=list[CourseOut])
async def my_courses(
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    chain_id: ChainIdQuery = None,
) -> list[CourseOut]:
    """My courses, every status; `onchainId` and token prices are `chainId`'s (default: the
    API's network)."""
    return await session.run_sync(
        service.my_courses, principal.address, chain_id=services.chain_id_of(chain_id)
    )


@router.post("/courses", response_model=CourseDetailOut, status_code=201)
async def create_course(
    body: CourseCreateIn, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> CourseDetailOut:
    """Create a draft course paid out to my wallet."""
    return await session.run_sync(
        service.create_course, principal.address, body, chain_id=services.settings.chain_id
    )


@router.patch("/courses/{course_id}", response_model=CourseDetailOut, responses=errors(409))
async def update_course(
    course_id: CourseId,
    body: CourseUpdateIn,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> CourseDetailOut:
    """Change title, description, status (draft/published/delisted) or refund window."""
    changes = body.model_dump(exclude_unset=True)
    return await session.run_sync(
        service.update_course,
        principal.address,
        course_id,
        changes,
        chain_id=services.settings.chain_id,
    )


@router.put(
    "/courses/{course_id}/fiat-price", response_model=CourseDetailOut, responses=errors(409)
)
async def set_fiat_price(
    course_id: CourseId,
    body: FiatPriceIn,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> CourseDetailOut:
    """Set the card price (integer minor units + ISO currency; 0 makes the course free)."""
    return await session.run_sync(
        service.set_fiat_price,
        principal.address,
        course_id,
        body.amount,
        body.currency,
        chain_id=services.settings.chain_id,
    )


@router.delete("/courses/{course_id}/fiat-price", response_model=CourseDetailOut)
async def clear_fiat_price(
    course_id: CourseId, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> CourseDetailOut:
    """Stop selling the course by card."""
    return await session.run_sync(
        service.set_fiat_price,
        principal.address,
        course_id,
        None,
        None,
        chain_id=services.settings.chain_id,
    )


@router.put("/courses/{course_id}/lessons/{n}", response_model=LessonOut)
async def put_lesson(
    course_id: CourseId,
    n: LessonNumber,
    body: LessonIn,
    principal: CurrentUser,
    session: DbSession,
) -> LessonOut:
    """Create lesson `n` (the next number) or replace an existing one."""
    return await session.run_sync(service.put_lesson, principal.address, course_id, n, body)


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
    chain_id: ChainIdQuery = None,
) -> CourseDetailOut:
    """Link the course to its on-chain id on `chainId` by hand (the indexer does it from
    CourseCreated).

    Only an on-chain course that exists and is paid out to my wallet can be linked: 404
    `onchain_course_not_found`, 403 `not_onchain_provider`.
    """
    chain = services.chain_id_of(chain_id)
    provider = await service.onchain_provider(
        services.chain_for(chain), services.deployment_on(chain).require_market(), body.onchain_id
    )
    return await session.run_sync(
        service.link_onchain, principal.address, course_id, chain, body.onchain_id, provider
    )


@router.post(
    "/courses/{course_id}/tx/create-course", response_model=TxOut, responses=errors(409, 503)
)
async def tx_create_course(
    course_id: CourseId,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    chain_id: ChainIdQuery = None,
) -> TxOut:
    """`createCourse(title, refundWindow)` on `chainId` for my wallet to sign."""
    chain = services.chain_id_of(chain_id)
    market = services.deployment_on(chain).require_market()
    return await session.run_sync(
        service.create_course_tx, principal.address, course_id, market, chain
    )


@router.post("/courses/{course_id}/tx/set-price", response_model=TxOut, responses=errors(409, 503))
async def tx_set_price(
    course_id: CourseId,
    body: SetPriceIn,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    chain_id: ChainIdQuery = None,
) -> TxOut:
    """`setPrice(courseId, token, price)` on `chainId` for my wallet to sign (price in base
    units of that chain's token)."""
    chain = services.chain_id_of(chain_id)
    market = services.deployment_on(chain).require_market()
    return await session.run_sync(
        service.set_price_tx, principal.address, course_id, market, chain, body
    )


@router.post("/courses/{course_id}/tx/refund", response_model=TxOut, responses=errors(409, 503))
async def tx_refund(
    course_id: CourseId,
    body: RefundTxIn,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> TxOut:
    """`refund(courseId, learner, payer, token, amount, fee)` of a paid crypto order, on the
    chain it was paid on."""

    def market_on(chain_id: int | None) -> tuple[str, int]:
        chain = services.chain_id_of(chain_id)
        return services.deployment_on(chain).require_market(), chain

    return await session.run_sync(
        service.refund_tx, principal.address, course_id, body.order_id, market_on
    )


@router.post("/tx/withdraw", response_model=TxOut, responses=errors(503))
async def tx_withdraw(
    body: WithdrawIn,
    principal: CurrentUser,
    services: ServicesDep,
    chain_id: ChainIdQuery = None,
) -> TxOut:
    """`withdraw(token)` on `chainId` for my wallet to sign."""
    chain = services.chain_id_of(chain_id)
    return tx_out(txs.withdraw(services.deployment_on(chain).require_market(), chain, body.token))


@router.get("/sales", response_model=SalesOut)
async def sales(
    principal: CurrentUser,
    session: DbSession,
    confirmed_only: Annotated[bool, Query(alias="confirmedOnly")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SalesOut:
    """My sales on both rails with totals per token/currency (`confirmedOnly`: crypto orders
    only once confirmed on-chain)."""
    return await session.run_sync(
        service.sales_out, principal.address, confirmed_only=confirmed_only, limit=limit
    )


@router.get("/payouts", response_model=PayoutsOut)
async def payouts(
    principal: CurrentUser,
    session: DbSession,
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PayoutsOut:
    """My payout ledger from the chain, newest first: escrow released to withdrawable (with the
    platform fee released beside it) and my withdrawals."""
    return await session.run_sync(
        service.payouts_out, principal.address, before=before, limit=limit
    )


def _connect_out(account: ConnectAccount | None) -> ConnectAccountOut:
    if account is None:
        return ConnectAccountOut(status="none")
    return ConnectAccountOut(
        status="ready" if account.ready else "onboarding",
        stripe_account_id=account.stripe_account_id,
        details_submitted=account.details_submitted,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        requirements_due=list(account.requirements_due or []),
    )


@router.get("/connect", response_model=ConnectAccountOut)
async def connect_account(principal: CurrentUser, session: DbSession) -> ConnectAccountOut:
    """My Stripe Connect account for card payouts, as Stripe last described it."""
    return _connect_out(await session.run_sync(connect.account_of, principal.address))


@router.post("/connect/onboarding", response_model=OnboardingOut, responses=errors(502, 503))
async def connect_onboarding(
    principal: CurrentUser, session: DbSession, services: ServicesDep
) -> OnboardingOut:
    """Start (or resume) Stripe onboarding: my Express account, created on the first call, and
    a one-time link to Stripe's onboarding form, which returns to the dashboard."""
    onboarding = await connect.start_onboarding(
        session, services.stripe, provider=principal.address
    )
    return OnboardingOut(url=onboarding.url, account=_connect_out(onboarding.account))


@router.get("/card-balance", response_model=CardBalanceOut, responses=errors(502, 503))
async def card_balance(
    principal: CurrentUser, session: DbSession, services: ServicesDep
) -> CardBalanceOut:
    """My card revenue at Stripe (pending, available) and my latest payouts, read live from my
    Connect account; empty until it is ready."""
    account, balance, payouts = await connect.card_balance(
        session, services.stripe, provider=principal.address
    )

    def money(kind: str) -> list[MoneyOut]:
        rows = (balance or {}).get(kind) or []
        return [MoneyOut(amount=int(r["amount"]), currency=str(r["currency"])) for r in rows]

    return CardBalanceOut(
        status=_connect_out(account).status,
        pending=money("pending"),
        available=money("available"),
        payouts=[
            CardPayoutOut(
                id=str(p["id"]),
                amount=int(p["amount"]),
                currency=str(p["currency"]),
                status=str(p["status"]),
                arrival_date=datetime.fromtimestamp(int(p["arrival_date"]), UTC),
                created_at=datetime.fromtimestamp(int(p["created"]), UTC),
            )
            for p in payouts
        ],
    )


@router.get("/balances", response_model=BalancesOut, responses=errors(502, 503))
async def balances(
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
    response: Response,
    chain_id: ChainIdQuery = None,
) -> BalancesOut:
    """My balances per token in `chainId`'s market: withdrawable now, and still in escrow (net,
    fee)."""
    chain_id = services.chain_id_of(chain_id)
    market = services.deployment_on(chain_id).require_market()
    tokens = list(
        (
            await session.scalars(
                select(Token).where(Token.chain_id == chain_id).order_by(Token.symbol)
            )
        ).all()
    )
    rows = await service.balances(services.chain_for(chain_id), market, principal.address, tokens)
    response.headers["Cache-Control"] = "no-store"
    return BalancesOut(
        market=market,
        balances=[
            BalanceOut(
                token=token_out({(chain_id, t.address): t}, chain_id, t.address),
                withdrawable=w,
                escrow_net=net,
                escrow_fee=fee,
            )
            for t, w, net, fee in rows
        ],
    )


__all__ = ["router"]


@router.post("/profile/tx", response_model=TxOut, responses=errors(503))
async def tx_set_profile(
    body: ProviderProfileIn,
    principal: CurrentUser,
    services: ServicesDep,
    chain_id: ChainIdQuery = None,
) -> TxOut:
    """`setProviderProfile(name, domain)` for my wallet to sign: the public record verifiers
    see for my courses (it drops the platform's verification until the platform verifies it
    again). Names and domains the contract would refuse are 422 here."""
    del principal  # signed-in only: the wallet signs as itself, nothing is stored here
    chain = services.chain_id_of(chain_id)
    certificate = services.deployment_on(chain).require_certificate()
    return tx_out(txs.set_provider_profile(certificate, chain, body.name, body.domain))


@router.get("/certificates", response_model=list[IssuedCertificateOut])
async def my_certificates(
    principal: CurrentUser,
    session: DbSession,
    course_id: Annotated[
        int | None, Query(alias="courseId", ge=1, le=MAX_INT32, description="One course only.")
    ] = None,
) -> list[IssuedCertificateOut]:
    """The certificates of my courses (of one course), newest first, with their status."""
    rows = await session.run_sync(
        certificates.certificates_of_provider, principal.address, course_id
    )
    return [IssuedCertificateOut.of(cert, course) for cert, course in rows]


@router.post(
    "/certificates/{certificate_id}/revoke",
    response_model=IssuedCertificateOut,
    responses=errors(404, 409),
)
async def revoke_certificate(
    certificate_id: CertificateId,
    body: CertificateRevokeIn,
    principal: CurrentUser,
    session: DbSession,
) -> IssuedCertificateOut:
    """Revoke a certificate of one of my courses (404 for anyone else's), with a reason and a
    note; audited and idempotent. The worker sends `revoke` and the status follows the chain."""

    def run(s: Session) -> IssuedCertificateOut:
        cert = certificates.revoke_from_product(
            s,
            certificate_id,
            reason_code=body.reason_code,
            note=body.note,
            provider=principal.address,
        )
        return IssuedCertificateOut.of(cert, s.get(Course, cert.course_id))

    return await session.run_sync(run)


# Public: what verifiers and learners may read about any provider.
public_router = APIRouter(prefix="/providers", tags=["provider"])


@public_router.get("/{address}", response_model=ProviderProfileOut, responses=errors(404))
async def get_profile(
    address: AddressStr,
    session: DbSession,
    services: ServicesDep,
    chain_id: ChainIdQuery = None,
) -> ProviderProfileOut:
    """A provider's public record as `chainId` holds it (default: the API's network), and
    whether the platform verified it there."""
    chain = services.chain_id_of(chain_id)
    profile = await session.run_sync(profiles.get_profile, chain, address)
    return ProviderProfileOut.model_validate(profile, from_attributes=True)
