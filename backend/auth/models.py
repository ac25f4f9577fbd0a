"""Sign-in state: single-use SIWE nonces and server-side sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, UTCDateTime, utcnow


class AuthNonce(Base):
    """A SIWE nonce: issued by GET /auth/nonce, consumed once by a verified sign-in.

    `binder_hash` ties the nonce to the client it was issued to (the hash of a random value kept
    in an HttpOnly cookie), so a nonce obtained by another client cannot be used.
    """

    __tablename__ = "auth_nonces"
    __table_args__ = (Index("ix_auth_nonces_expires_at", "expires_at"),)

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    binder_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuthSession(Base):
    """A signed-in session. Only the sha256 of the bearer token is stored."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_address", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(Address)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
