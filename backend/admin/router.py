"""/api/v1/admin: manual grants and revokes, the verification of providers (admin wallets from
settings), audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.access import service
from backend.access.schemas import EntitlementOut, GrantIn, RevokeIn
from backend.api.deps import ChainIdQuery, DbSession, ServicesDep
from backend.audit.models import AuditEntry
from backend.auth.deps import AdminUser
from backend.catalog.models import Course
from backend.certificates import service as certificates
from backend.certificates.schemas import CertificateRevokeIn, IssuedCertificateOut
from backend.core.openapi import errors
from backend.core.schemas import AddressStr, ApiInput, ApiModel, CertificateId, OrderId
from backend.orders import card, views
from backend.orders.schemas import OrderOut
from backend.provider import verification
from backend.provider.models import ProviderProfile, ProviderVerificationRequest
from backend.provider.profiles import get_profile
from backend.provider.schemas import (
    AdminProviderOut,
    ProviderVerificationIn,
    ProviderVerificationOut,
)

router = APIRouter(prefix="/admin", tags=["admin"])


class AuditEntryOut(ApiModel):
    """One audit log entry."""

    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    request_id: str | None


@router.post("/entitlements/grant", response_model=EntitlementOut, responses=errors(404))
async def admin_grant(body: GrantIn, admin: AdminUser, session: DbSession) -> EntitlementOut:
    """Give an address access without payment (scholarship, support case); idempotent. The
    grant is recorded on-chain (`grantAccess`, source Grant) by the worker."""
    entitlement = await session.run_sync(
        service.admin_grant,
        admin=admin.address,
        address=body.address,
        course_id=body.course_id,
        reason=body.reason,
    )
    return EntitlementOut.of(entitlement)


@router.post("/entitlements/revoke", response_model=EntitlementOut, responses=errors(404, 409))
async def admin_revoke(body: RevokeIn, admin: AdminUser, session: DbSession) -> EntitlementOut:
    """Revoke an address's active access to a course (404 if it has none; 409 for access bought
    on-chain, which only a refund ends)."""
    revoked = await session.run_sync(
        service.admin_revoke,
        admin=admin.address,
        address=body.address,
        course_id=body.course_id,
        reason=body.reason,
    )
    return EntitlementOut.of(revoked)


def _provider_out(
    profile: ProviderProfile, request: ProviderVerificationRequest | None
) -> AdminProviderOut:
    out = AdminProviderOut.model_validate(profile)
    if request is not None:
        out.latest_request = ProviderVerificationOut.model_validate(request)
    return out


@router.get("/providers", response_model=list[AdminProviderOut])
async def providers(
    admin: AdminUser, session: DbSession, services: ServicesDep, chain_id: ChainIdQuery = None
) -> list[AdminProviderOut]:
    """Every provider's public record on `chainId` (default: the API's network) for review
    (unverified first), with its newest request there."""
    chain = services.chain_id_of(chain_id)
    rows = await session.run_sync(verification.providers_for_review, chain)
    return [_provider_out(profile, request) for profile, request in rows]


@router.post(
    "/providers/{address}/verification",
    response_model=AdminProviderOut,
    responses=errors(404, 409),
)
async def set_provider_verification(
    address: AddressStr,
    body: ProviderVerificationIn,
    admin: AdminUser,
    session: DbSession,
    services: ServicesDep,
    chain: ChainIdQuery = None,
) -> AdminProviderOut:
    """Verify the record the admin reviewed on `chainId` (default: the API's network;
    `profileHash`: 409 if the provider changed it since) or unverify it; audited, idempotent.
    The worker sends `verifyProvider` / `unverifyProvider` on that chain and the record shows
    the result once that chain's indexer has seen it."""

    chain_id = services.chain_id_of(chain)

    def run(s: Any) -> AdminProviderOut:
        request = verification.request_verification(
            s,
            chain_id=chain_id,
            admin=admin.address,
            provider=address,
            verify=body.verified,
            profile_hash=body.profile_hash,
            reason=body.reason,
        )
        return _provider_out(get_profile(s, chain_id, address), request)

    return await session.run_sync(run)


@router.get(
    "/certificates/by-token/{token_id}", response_model=IssuedCertificateOut, responses=errors(404)
)
async def certificate_by_token(
    token_id: Annotated[str, Path(pattern=r"^[0-9]{1,78}$", description="The token id.")],
    admin: AdminUser,
    session: DbSession,
    services: ServicesDep,
) -> IssuedCertificateOut:
    """The certificate the product issued as token `token_id` of the API's network (what a
    verifier sees)."""

    def run(s: Session) -> IssuedCertificateOut:
        cert = certificates.certificate_by_token(s, services.settings.chain_id, int(token_id))
        return IssuedCertificateOut.of(cert, s.get(Course, cert.course_id))

    return await session.run_sync(run)


@router.post(
    "/certificates/{certificate_id}/revoke",
    response_model=IssuedCertificateOut,
    responses=errors(404, 409),
)
async def revoke_certificate(
    certificate_id: CertificateId, body: CertificateRevokeIn, admin: AdminUser, session: DbSession
) -> IssuedCertificateOut:
    """Revoke any certificate with a reason and a note; audited and idempotent."""

    def run(s: Session) -> IssuedCertificateOut:
        cert = certificates.revoke_from_product(
            s, certificate_id, reason_code=body.reason_code, note=body.note, admin=admin.address
        )
        return IssuedCertificateOut.of(cert, s.get(Course, cert.course_id))

    return await session.run_sync(run)


class ReviewDecisionIn(ApiInput):
    """Why the admin accepts a payment that differs from its quote."""

    reason: str = Field(min_length=3, max_length=500)


@router.get("/orders/review", response_model=list[OrderOut])
async def orders_to_review(admin: AdminUser, session: DbSession) -> list[OrderOut]:
    """Card payments Stripe took that grant nothing until an admin decides (status
    `needs_review`: an amount or currency other than the quote, or a late second payment).
    Decide with `POST /orders/{id}/refund` or `POST /admin/orders/{id}/accept`."""
    return await session.run_sync(lambda s: views.orders_out(s, card.orders_to_review(s)))


@router.post("/orders/{order_id}/accept", response_model=OrderOut, responses=errors(404, 409))
async def accept_order(
    order_id: OrderId, body: ReviewDecisionIn, admin: AdminUser, session: DbSession
) -> OrderOut:
    """Accept a payment that needed review: the order is paid and access granted; audited."""

    def run(s: Session) -> OrderOut:
        order = card.accept_reviewed(s, order_id, admin=admin.address, reason=body.reason)
        return views.orders_out(s, [order])[0]

    return await session.run_sync(run)


@router.get("/audit", response_model=list[AuditEntryOut])
async def audit_log(
    admin: AdminUser,
    session: DbSession,
    subject_type: Annotated[str | None, Query(alias="subjectType", max_length=40)] = None,
    subject_id: Annotated[str | None, Query(alias="subjectId", max_length=120)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntryOut]:
    """The newest audit entries, optionally for one subject."""
    stmt = select(AuditEntry)
    if subject_type:
        stmt = stmt.where(AuditEntry.subject_type == subject_type)
    if subject_id:
        stmt = stmt.where(AuditEntry.subject_id == subject_id)
    rows = (await session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit))).all()
    return [AuditEntryOut.model_validate(r) for r in rows]
