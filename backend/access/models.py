"""Entitlements: who may open which course, from which rail, since when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, UTCDateTime, utcnow
from backend.core.types import BigId


class AccessSource:
    """How an entitlement was obtained (mirrors ICourseMarket.AccessSource off-chain)."""

    CRYPTO = "crypto"
    CARD = "card"
    FREE = "free"
    GRANT = "grant"
    ALL = (CRYPTO, CARD, FREE, GRANT)


class Entitlement(Base):
    """A (address, course) access right; revoked rows are kept as history.

    The partial unique index allows at most one ACTIVE row per (course, address) and is also the
    index of the access check (its INCLUDE columns let PostgreSQL answer from the index alone).
    """

    __tablename__ = "entitlements"
    __table_args__ = (
        CheckConstraint("source IN ('crypto', 'card', 'free', 'grant')", name="source"),
        Index(
            "uq_entitlements_active_course_address",
            "course_id",
            "address",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
            postgresql_include=["source", "granted_at"],
        ),
        Index("ix_entitlements_address", "address"),
        Index("ix_entitlements_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(Address)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    source: Mapped[str] = mapped_column(String(8))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), default=None)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoke_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(80), default=None)
