"""Sign-in request and response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from backend.core.schemas import ApiInput, ApiModel


class NonceOut(ApiModel):
    """What the wallet needs to build the EIP-4361 message."""

    nonce: str
    domain: str
    uri: str
    chain_id: int
    issued_at: datetime
    expires_at: datetime


class VerifyIn(ApiInput):
    """The signed EIP-4361 message."""

    message: str = Field(min_length=1, max_length=4096)
    signature: str = Field(min_length=1, max_length=2 + 2 * 4096)


class SessionOut(ApiModel):
    """A new session: the same opaque token is also set as an HttpOnly cookie."""

    token: str
    address: str
    expires_at: datetime


class MeOut(ApiModel):
    """The signed-in wallet and its roles."""

    address: str
    roles: list[str]
    email: str | None = None
    display_name: str | None = None


class ProfileIn(ApiInput):
    """Optional profile fields (empty string clears)."""

    email: str | None = Field(
        default=None, max_length=320, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    display_name: str | None = Field(default=None, max_length=100)


class LogoutOut(ApiModel):
    """Logout result."""

    revoked: bool
