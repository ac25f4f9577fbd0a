"""Access check and entitlement bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from backend.core.schemas import AddressStr, ApiInput, ApiModel


class AccessOut(ApiModel):
    """Whether an address may open a course, through which rail, since when."""

    has_access: bool
    source: str | None = None
    since: datetime | None = None


class EntitlementOut(ApiModel):
    """An entitlement (active or revoked)."""

    id: int
    course_id: int
    address: str
    source: str
    order_id: str | None
    granted_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    active: bool


class GrantIn(ApiInput):
    """Admin grant."""

    address: AddressStr
    course_id: int = Field(ge=1)
    reason: str = Field(min_length=3, max_length=200)


class RevokeIn(ApiInput):
    """Admin revoke."""

    address: AddressStr
    course_id: int = Field(ge=1)
    reason: str = Field(min_length=3, max_length=200)
