"""Access check and entitlement bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from backend.access.models import Entitlement
from backend.core.schemas import AddressStr, ApiInput, ApiModel, RowId


class AccessOut(ApiModel):
    """Whether an address may open a course, through which rail, since when."""

    has_access: bool
    source: str | None = None
    since: datetime | None = None


class EntitlementOut(ApiModel):
    """An entitlement (active or revoked) and where its on-chain record stands.

    `chainStatus`: pending | recorded | failed | revoke_pending | revoked. The access check
    answers from the database at once; `hasAccess` on-chain follows within the worker's latency.
    """

    id: int
    course_id: int
    address: str
    source: str
    order_id: str | None
    granted_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    active: bool
    chain_status: str
    chain_tx_hash: str | None
    chain_error: str | None

    @classmethod
    def of(cls, e: Entitlement) -> EntitlementOut:
        """The body of entitlement `e`."""
        return cls(
            id=e.id,
            course_id=e.course_id,
            address=e.address,
            source=e.source,
            order_id=e.order_id,
            granted_at=e.granted_at,
            revoked_at=e.revoked_at,
            revoke_reason=e.revoke_reason,
            active=e.revoked_at is None,
            chain_status=e.chain_status,
            chain_tx_hash=e.chain_tx_hash,
            chain_error=e.chain_error,
        )


class GrantIn(ApiInput):
    """Admin grant."""

    address: AddressStr
    course_id: RowId
    reason: str = Field(min_length=3, max_length=200)


class RevokeIn(ApiInput):
    """Admin revoke."""

    address: AddressStr
    course_id: RowId
    reason: str = Field(min_length=3, max_length=200)
