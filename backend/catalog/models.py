"""Catalog: courses, their lessons, accepted tokens and per-token prices mirrored from chain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.db import Address, Base, TokenAmount, UTCDateTime, utcnow


class CertificateMode:
    """Who pays the gas: the platform mints, or the learner claims with a signed voucher."""

    MINT = "mint"
    VOUCHER = "voucher"


class CourseStatus:
    """Publication state of a course (listing on-chain is mirrored separately)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    DELISTED = "delisted"
    ALL = (DRAFT, PUBLISHED, DELISTED)


class Course(Base):
    """A course. Created in the database first (draft), then linked to its on-chain id on each
    chain it is registered on (`chains`)."""

    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published', 'delisted')", name="status"),
        CheckConstraint("refund_window >= 0", name="refund_window"),
        CheckConstraint(
            "(fiat_price IS NULL) = (fiat_currency IS NULL)", name="fiat_price_currency"
        ),
        CheckConstraint("certificate_mode IN ('mint', 'voucher')", name="certificate_mode"),
        Index("ix_courses_provider", "provider"),
        Index("ix_courses_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(Address)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=CourseStatus.DRAFT)
    # Card price in minor units of an ISO-4217 currency (lower-case, as Stripe wants it).
    fiat_price: Mapped[int | None] = mapped_column(TokenAmount, default=None)
    fiat_currency: Mapped[str | None] = mapped_column(String(3), default=None)
    refund_window: Mapped[int] = mapped_column(Integer, default=0)  # seconds
    # How completions are certified: the platform mints (and pays the gas), or the learner claims
    # with a voucher signed by the issuer key (and pays the gas). See CertificateMode.
    certificate_mode: Mapped[str] = mapped_column(
        String(8), default=CertificateMode.MINT, server_default=CertificateMode.MINT
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Loaded with the course (one IN query per batch of courses): a handful of rows at most.
    chains: Mapped[list[CourseChain]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="CourseChain.chain_id",
        back_populates="course",
    )

    def registration(self, chain_id: int) -> CourseChain | None:
        """The course's registration on `chain_id`, if it has one."""
        return next((r for r in self.chains if r.chain_id == chain_id), None)

    def onchain_id_on(self, chain_id: int) -> int | None:
        """The course's id in the market on `chain_id`, if registered there."""
        reg = self.registration(chain_id)
        return None if reg is None else reg.onchain_id


class CourseChain(Base):
    """A course's registration on one chain: its id in that chain's market, and the listing
    mirrored from there. The same on-chain id on two chains is two unrelated courses until each
    chain links it to a course here."""

    __tablename__ = "course_chains"
    __table_args__ = (
        UniqueConstraint("chain_id", "onchain_id"),
        UniqueConstraint("course_id", "chain_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    onchain_id: Mapped[int] = mapped_column(BigInteger)
    listed: Mapped[bool | None] = mapped_column(Boolean, default=None)
    block: Mapped[int | None] = mapped_column(BigInteger, default=None)  # last mirrored event's
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    course: Mapped[Course] = relationship(back_populates="chains")


class Lesson(Base):
    """Lesson `position` (1, 2, ...) of a course."""

    __tablename__ = "lessons"
    __table_args__ = (
        UniqueConstraint("course_id", "position"),
        CheckConstraint("position >= 1", name="position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Token(Base):
    """A payment token of one chain; the zero address is that chain's native coin. The same
    address on two chains is two tokens (deterministic deployments make that common)."""

    __tablename__ = "tokens"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(Address, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    decimals: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    # The market's allowlist as last seen on-chain (TokenAllowed); purchases in a token the
    # market does not allow would revert, so prices in it are not offered.
    allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class TokenPrice(Base):
    """The price of a course in a token of one chain, as last seen on that chain (PriceSet)."""

    __tablename__ = "token_prices"
    __table_args__ = (UniqueConstraint("course_id", "chain_id", "token"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    token: Mapped[str] = mapped_column(Address)
    price: Mapped[int] = mapped_column(TokenAmount)
    accepted: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_block: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
