"""/api/v1/me: the signed-in learner's history across both rails."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.access.models import Entitlement
from backend.access.schemas import EntitlementOut
from backend.certificates.schemas import CertificateOut
from backend.certificates.service import certificates_of
from backend.core.deps import CurrentUser, DbSession
from backend.orders.schemas import OrderOut
from backend.orders.service import orders_of
from backend.orders.views import orders_out

router = APIRouter(prefix="/me", tags=["me"])


@router.get("/orders", response_model=list[OrderOut])
async def my_orders(principal: CurrentUser, session: DbSession) -> list[OrderOut]:
    """Orders I bought or received, card and crypto, newest first."""

    def build(s: Session) -> list[OrderOut]:
        return orders_out(s, orders_of(s, principal.address))

    result: list[OrderOut] = await session.run_sync(build)
    return result


@router.get("/entitlements", response_model=list[EntitlementOut])
async def my_entitlements(principal: CurrentUser, session: DbSession) -> list[EntitlementOut]:
    """My access rights, active and past, newest first."""
    rows = (
        await session.scalars(
            select(Entitlement)
            .where(Entitlement.address == principal.address)
            .order_by(Entitlement.granted_at.desc(), Entitlement.id.desc())
        )
    ).all()
    return [EntitlementOut.of(e) for e in rows]


@router.get("/certificates", response_model=list[CertificateOut])
async def my_certificates(principal: CurrentUser, session: DbSession) -> list[CertificateOut]:
    """My certificates (requested, minted, claimable, revoked)."""

    def build(s: Session) -> list[CertificateOut]:
        return [CertificateOut.model_validate(c) for c in certificates_of(s, principal.address)]

    result: list[CertificateOut] = await session.run_sync(build)
    return result
