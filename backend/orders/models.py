"""Orders of both payment rails: crypto (quoted here, paid on-chain) and card (Stripe)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, JsonType, TokenAmount, UTCDateTime, utcnow


class Rail:
    """How an order is paid."""

    CRYPTO = "crypto"
    CARD = "card"


class OrderStatus:
    """The order state machine.

    Card:   pending -> paid -> refunded | disputed -> paid (won) | lost; pending -> failed | expired
            (an event seen out of order may also move pending straight to refunded/disputed/lost);
            pending -> processing (an asynchronous payment method) -> paid | failed; a payment
            Stripe completes after local expiry is honoured: expired -> paid; a payment that
            differs from the quote, or a late one for a learner who has access by then, grants
            nothing: -> needs_review, then an admin refunds it (refunded) or accepts it (paid).
    Crypto: pending (quoted) -> paid -> refunded; paid -> reverted (reorg) -> paid (re-mined);
            pending -> expired (quote timed out, still payable: a late payment is kept, flagged).
    """

    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    LOST = "lost"
    FAILED = "failed"
    EXPIRED = "expired"
    REVERTED = "reverted"
    PROCESSING = "processing"
    NEEDS_REVIEW = "needs_review"
    ALL = (
        PENDING, PAID, REFUNDED, DISPUTED, LOST, FAILED, EXPIRED, REVERTED, PROCESSING,
        NEEDS_REVIEW,
    )  # fmt: skip
    # Money was taken at some point (what provider sales report).
    SETTLED = (PAID, REFUNDED, DISPUTED, LOST)


def _partial_index(name: str, column: str, *, unique: bool = False) -> Index:
    """An index of `column` over the rows where it is set."""
    where = text(f"{column} IS NOT NULL")
    return Index(name, column, unique=unique, postgresql_where=where, sqlite_where=where)


class Order(Base):
    """One purchase attempt of one course for one recipient."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("rail IN ('crypto', 'card')", name="rail"),
        CheckConstraint(
            "status IN ('pending', 'paid', 'refunded', 'disputed', 'lost', 'failed', 'expired',"
            " 'reverted', 'processing', 'needs_review')",
            name="status",
        ),
        CheckConstraint(
            "(rail = 'crypto' AND token IS NOT NULL) OR (rail = 'card' AND currency IS NOT NULL)",
            name="rail_unit",
        ),
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        Index("ix_orders_buyer", "buyer", "created_at"),
        Index("ix_orders_recipient_course", "recipient", "course_id"),
        Index("ix_orders_course_status", "course_id", "status"),
        # Card references are NULL on every crypto order: partial indexes keep on-chain
        # backfills (tens of thousands of crypto orders) from paying for them.
        _partial_index("ix_orders_stripe_payment_intent_id", "stripe_payment_intent_id"),
        _partial_index("ix_orders_stripe_charge_id", "stripe_charge_id"),
        _partial_index(
            "uq_orders_stripe_checkout_session_id", "stripe_checkout_session_id", unique=True
        ),
        # Orders still waiting for confirmations, by block: the indexer flips them as blocks
        # age; the index holds only the few orders near the head.
        Index(
            "ix_orders_unconfirmed_block",
            "chain_id",
            "block_number",
            postgresql_where=text("NOT confirmed"),
            # SQLite stores booleans as integers; SQLAlchemy spells `~confirmed` like this there.
            sqlite_where=text("confirmed = 0"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rail: Mapped[str] = mapped_column(String(8))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    buyer: Mapped[str] = mapped_column(Address)
    recipient: Mapped[str] = mapped_column(Address)
    amount: Mapped[int] = mapped_column(TokenAmount)
    token: Mapped[str | None] = mapped_column(Address, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    fee: Mapped[int] = mapped_column(TokenAmount, default=0)
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING)
    # bytes32 hex: the purchase's orderRef on-chain, and the ref of card grants recorded there.
    order_ref: Mapped[str] = mapped_column(String(66), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Crypto quotes: the refund window (seconds) the buyer was quoted; the purchase transaction
    # carries it and the market refuses the purchase if the course's window is shorter by then.
    quoted_refund_window: Mapped[int | None] = mapped_column(Integer, default=None)
    # Crypto: where the purchase was seen.
    chain_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    log_index: Mapped[int | None] = mapped_column(Integer, default=None)
    block_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    refund_tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    refund_log_index: Mapped[int | None] = mapped_column(Integer, default=None)
    refund_block_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    # Card: Stripe's references.
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), default=None)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), default=None)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), default=None)
    stripe_dispute_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # The provider's Connect account a card payment was a destination charge to (its refund
    # reverses the transfer); None while the platform keeps card revenue.
    stripe_destination: Mapped[str | None] = mapped_column(String(255), default=None)
    checkout_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    refund_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # What differed from the quote (amount, token, recipient...): kept, flagged, audited.
    anomalies: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
