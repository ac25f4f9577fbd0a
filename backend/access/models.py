"""Entitlements: who may open which course, from which rail, since when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, BigId, UTCDateTime, utcnow


class AccessSource:
    """How an entitlement was obtained (mirrors ICourseMarket.AccessSource off-chain)."""

    CRYPTO = "crypto"
    CARD = "card"
    FREE = "free"
    GRANT = "grant"
    ALL = (CRYPTO, CARD, FREE, GRANT)


class OnchainSource:
    """`ICourseMarket.AccessSource` as the chain stores it (`NONE`: no access)."""

    NONE, PURCHASE, CARD, GRANT = 0, 1, 2, 3
    # What the operator records on-chain (grantAccess) for each off-chain source.
    RECORDED_AS = {AccessSource.CARD: CARD, AccessSource.FREE: GRANT, AccessSource.GRANT: GRANT}
    # The entitlement source of access the chain holds (applied by the indexer, or adopted).
    ADOPTED_AS = {PURCHASE: AccessSource.CRYPTO, CARD: AccessSource.CARD, GRANT: AccessSource.GRANT}


class ChainStatus:
    """Where an entitlement's on-chain record (`CourseMarket.hasAccess`) stands.

    The database answers at once; the chain follows through the outbox and the worker:
    pending -> recorded (grantAccess mined, or the chain already held it: purchases, grants the
    indexer adopted) | failed (with `chain_error`); after a revoke: revoke_pending -> revoked.
    """

    PENDING = "pending"
    RECORDED = "recorded"
    FAILED = "failed"
    REVOKE_PENDING = "revoke_pending"
    REVOKED = "revoked"
    ALL = (PENDING, RECORDED, FAILED, REVOKE_PENDING, REVOKED)


class Entitlement(Base):
    """A (address, course) access right; revoked rows are kept as history.

    The partial unique index allows at most one ACTIVE row per (course, address) and is also the
    index of the access check (its INCLUDE columns let PostgreSQL answer from the index alone).
    """

    __tablename__ = "entitlements"
    __table_args__ = (
        CheckConstraint("source IN ('crypto', 'card', 'free', 'grant')", name="source"),
        CheckConstraint(
            "chain_status IN ('pending', 'recorded', 'failed', 'revoke_pending', 'revoked')",
            name="chain_status",
        ),
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
    # The on-chain mirror (see ChainStatus). `chain_ref` is the bytes32 `ref` of grantAccess
    # (0x hex): the order's `order_ref` for card access, a hash of the entitlement id for free
    # claims and admin grants, the event's ref for grants adopted from the chain.
    chain_status: Mapped[str] = mapped_column(String(16), default=ChainStatus.PENDING)
    # The chain that holds the record: a purchase's chain, the chain a grant was adopted from,
    # or the chain the worker wrote a card/free/admin grant to (None until it did).
    chain_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    chain_ref: Mapped[str | None] = mapped_column(String(66), default=None)
    chain_tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    chain_error: Mapped[str | None] = mapped_column(String(500), default=None)
    chain_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
