"""/api/v1/me: the signed-in learner's history across both rails; /api/v1/auth/me: the signed-in
wallet's profile and roles."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from backend.access.models import Entitlement
from backend.access.schemas import EntitlementOut
from backend.account import service
from backend.api.deps import DbSession, ServicesDep
from backend.auth.deps import CurrentUser
from backend.auth.schemas import MeOut, ProfileIn
from backend.certificates.schemas import CertificateOut
from backend.orders.schemas import OrderOut
from backend.users.models import User
from backend.users.service import update_profile

router = APIRouter(prefix="/me", tags=["me"])
# The profile and roles of the signed-in wallet, under the auth prefix the app has always used.
profile_router = APIRouter(prefix="/auth", tags=["auth"])


@profile_router.get("/me", response_model=MeOut)
async def me(principal: CurrentUser, session: DbSession, services: ServicesDep) -> MeOut:
    """The signed-in wallet and its roles (learner, provider, admin)."""
    roles = await session.run_sync(service.roles_of, principal.address, services.admins)
    user = await session.scalar(select(User).where(User.id == principal.user_id))
    return MeOut(
        address=principal.address,
        roles=roles,
        email=user.email if user else None,
        display_name=user.display_name if user else None,
    )


@profile_router.patch("/me", response_model=MeOut)
async def update_me(
    body: ProfileIn, principal: CurrentUser, session: DbSession, services: ServicesDep
) -> MeOut:
    """Set the optional email and display name."""
    user = await session.scalar(select(User).where(User.id == principal.user_id))
    assert user is not None
    await session.run_sync(
        lambda s: update_profile(s, user, email=body.email, display_name=body.display_name)
    )
    roles = await session.run_sync(service.roles_of, principal.address, services.admins)
    return MeOut(
        address=principal.address,
        roles=roles,
        email=user.email,
        display_name=user.display_name,
    )


@router.get("/orders", response_model=list[OrderOut])
async def my_orders(principal: CurrentUser, session: DbSession) -> list[OrderOut]:
    """Orders I bought or received, card and crypto, newest first."""
    return await session.run_sync(service.my_orders, principal.address)


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
    return await session.run_sync(service.my_certificates, principal.address)
